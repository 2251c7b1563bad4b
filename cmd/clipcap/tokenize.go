package main

import (
	"os"

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
	tok, err := tokenizer.LoadDir(*dir)
	if err != nil {
		return err
	}
	return tok.Stream(fs.Args(), os.Stdin, os.Stdout, *decode)
}
