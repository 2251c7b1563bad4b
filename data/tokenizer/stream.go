package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Stream is `clipcap tokenize`: each of args (the whole argument, newlines
// included), or else each line of stdin (its line ending excluded), becomes
// one JSON array of token ids on w; with decode, each input is a JSON array
// of ids and becomes its text. Errors name the argument or line.
func (t *Tokenizer) Stream(args []string, stdin io.Reader, w io.Writer, decode bool) error {
	out := bufio.NewWriter(w)
	defer out.Flush()
	handle := func(where, input string) error {
		if decode {
			return t.decodeLine(out, where, input)
		}
		return t.encodeLine(out, input)
	}
	if len(args) > 0 {
		for i, a := range args {
			if err := handle(fmt.Sprintf("argument %d", i+1), a); err != nil {
				return err
			}
		}
		return out.Flush()
	}
	// One input per stdin line; the line ending ("\n" or "\r\n") is not part
	// of the text. A whole argument, by contrast, keeps its newlines.
	in := bufio.NewReader(stdin)
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

func (t *Tokenizer) encodeLine(w io.Writer, text string) error {
	ids, err := t.Encode(text)
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

func (t *Tokenizer) decodeLine(w io.Writer, where, input string) error {
	if strings.TrimSpace(input) == "" {
		return nil // blank lines between id arrays carry nothing
	}
	var ids []int
	if err := json.Unmarshal([]byte(input), &ids); err != nil {
		return fmt.Errorf("tokenize: %s is not a JSON array of token ids: %v", where, err)
	}
	text, err := t.Decode(ids)
	if err != nil {
		return fmt.Errorf("tokenize: %s: %w", where, err)
	}
	_, err = fmt.Fprintf(w, "%s\n", text)
	return err
}
