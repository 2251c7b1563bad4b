package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// idCase is one entry of expected.json, python_only.json, toy_expected.json.
type idCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
}

func readCases(t testing.TB, name string) []idCase {
	var cases []idCase
	readJSON(t, name, &cases)
	if len(cases) == 0 {
		t.Fatalf("testdata/%s has no cases", name)
	}
	return cases
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkCases encodes every case, compares with its ids and round-trips.
func checkCases(t *testing.T, tok *Tokenizer, cases []idCase) {
	t.Helper()
	for _, c := range cases {
		got, err := tok.Encode(c.Text)
		if err != nil {
			t.Errorf("Encode(%q): %v", c.Text, err)
			continue
		}
		if !equalInts(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
		back, err := tok.Decode(got)
		if err != nil || back != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q, %v", c.Text, back, err)
		}
	}
}

// gpt2 loads the real GPT-2 files from the default dir, or skips.
func gpt2(t testing.TB) *Tokenizer {
	t.Helper()
	dir := DefaultDir()
	if _, err := os.Stat(filepath.Join(dir, VocabFile)); err != nil {
		t.Skipf("GPT-2 tokenizer files not in %q (run scripts/fetch-tokenizer.sh): %v", dir, err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
