package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzTokenize checks Tokenize (line splitting, the parallel plan and the
// fast path) against tokenizeOnePass, the plain lexer over the joined lines,
// on two captions at a time: the second matters because a caption's tokens
// may depend on the next line. Seeds are the adversarial tokenizer cases,
// consecutive pairs so the cross-line cases stay together.
func FuzzTokenize(f *testing.F) {
	var caps struct {
		Captions []string `json:"captions"`
	}
	var frags struct {
		Pieces []string `json:"pieces"`
	}
	for file, v := range map[string]any{"tokenizer_cases.json": &caps, "tokenizer_fragments.json": &frags} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			f.Fatalf("%s: %v", file, err)
		}
	}
	for i := range caps.Captions {
		next := ""
		if i+1 < len(caps.Captions) {
			next = caps.Captions[i+1]
		}
		f.Add(caps.Captions[i], next)
	}
	for _, p := range frags.Pieces {
		f.Add("a "+p+" b.", "The end")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := []string{a, b}
		got, want := Tokenize(in), tokenizeOnePass(in)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("line %d of %q: Tokenize %q, one pass %q", i, in, got[i], want[i])
			}
		}
	})
}
