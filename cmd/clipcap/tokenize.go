package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/clipcap/clipcap/data/tokenizer"
)

const tokenizeSummary = "GPT-2 BPE token ids of text (one JSON array per TEXT or stdin line); --decode: ids to text"

func init() {
	register(command{name: "tokenize", summary: tokenizeSummary, light: true, run: runTokenize})
}

func runTokenize(args []string) error {
	fs := newFlags("tokenize", "[--decode] [--dir DIR] [TEXT...]", tokenizeSummary)
	decode := fs.Bool("decode", false, "read JSON arrays of token ids (arguments or stdin lines) and print their text")
	dir := fs.String("dir", "", "directory with vocab.json and merges.txt (default "+tokenizer.DefaultDir()+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var tok *tokenizer.Tokenizer
	var err error
	if *dir != "" {
		tok, err = tokenizer.Load(*dir)
	} else {
		tok, err = tokenizer.LoadDefault()
	}
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	handle := func(where, input string) error {
		if *decode {
			return decodeLine(tok, out, where, input)
		}
		return encodeLine(tok, out, input)
	}
	if fs.NArg() > 0 {
		for i, a := range fs.Args() {
			if err := handle(fmt.Sprintf("argument %d", i+1), a); err != nil {
				return err
			}
		}
		return out.Flush()
	}
	// One input per stdin line; the line ending ("\n" or "\r\n") is not part
	// of the text. A whole argument, by contrast, keeps its newlines.
	in := bufio.NewReader(os.Stdin)
	for n := 1; ; n++ {
		line, rerr := in.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("tokenize: reading stdin: %w", rerr)
		}
		if rerr == io.EOF && line == "" {
			break
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if err := handle(fmt.Sprintf("stdin line %d", n), line); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		}
	}
	return out.Flush()
}

func encodeLine(tok *tokenizer.Tokenizer, w io.Writer, text string) error {
	ids, err := tok.Encode(text)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []int{} // print [] rather than null
	}
	b, _ := json.Marshal(ids) // []int always marshals
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func decodeLine(tok *tokenizer.Tokenizer, w io.Writer, where, input string) error {
	if strings.TrimSpace(input) == "" {
		return nil // blank lines between id arrays carry nothing
	}
	var ids []int
	if err := json.Unmarshal([]byte(input), &ids); err != nil {
		return fmt.Errorf("tokenize: %s is not a JSON array of token ids: %v", where, err)
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return fmt.Errorf("tokenize: %s: %w", where, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", text)
	return err
}
