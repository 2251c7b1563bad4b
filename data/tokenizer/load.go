package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File names inside a tokenizer dir (and inside a model dir), as published
// for GPT-2 by HuggingFace.
const (
	VocabFile  = "vocab.json"
	MergesFile = "merges.txt"
)

// DefaultDir is where scripts/fetch-tokenizer.sh installs GPT-2's files:
// $CLIPCAP_TOKENIZER_DIR if set, else $CLIPCAP_CACHE/tokenizer/gpt2 if
// CLIPCAP_CACHE is set, else ${XDG_CACHE_HOME:-$HOME/.cache}/clipcap/tokenizer/gpt2.
// It returns "" when none of these variables is set.
func DefaultDir() string {
	if d := os.Getenv("CLIPCAP_TOKENIZER_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("CLIPCAP_CACHE"); d != "" {
		return filepath.Join(d, "tokenizer", "gpt2")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := os.Getenv("HOME")
		if home == "" {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "clipcap", "tokenizer", "gpt2")
}

// LoadDefault loads the tokenizer from DefaultDir.
func LoadDefault() (*Tokenizer, error) {
	dir := DefaultDir()
	if dir == "" {
		return nil, errors.New("tokenizer: no default tokenizer dir: HOME is unset; set CLIPCAP_TOKENIZER_DIR or CLIPCAP_CACHE and run scripts/fetch-tokenizer.sh")
	}
	return Load(dir)
}

// LoadDir loads the tokenizer from dir, or from DefaultDir when dir is "".
func LoadDir(dir string) (*Tokenizer, error) {
	if dir == "" {
		return LoadDefault()
	}
	return Load(dir)
}

// Load reads vocab.json and merges.txt from dir.
func Load(dir string) (*Tokenizer, error) {
	vocabPath := filepath.Join(dir, VocabFile)
	mergesPath := filepath.Join(dir, MergesFile)
	vocabData, err := readTokenizerFile(dir, vocabPath)
	if err != nil {
		return nil, err
	}
	mergesData, err := readTokenizerFile(dir, mergesPath)
	if err != nil {
		return nil, err
	}
	vocab, err := parseVocab(vocabData)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s is not a JSON object of token -> id: %w", vocabPath, err)
	}
	// Tolerate CRLF line endings from a checkout on Windows.
	text := strings.ReplaceAll(string(mergesData), "\r\n", "\n")
	return build(vocabPath, vocab, mergesPath, strings.Split(text, "\n"))
}

func readTokenizerFile(dir, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %s not found in %s; run scripts/fetch-tokenizer.sh %s (or scripts/setup.sh) to install GPT-2's tokenizer files", filepath.Base(path), dir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: reading %s: %w", path, err)
	}
	return data, nil
}
