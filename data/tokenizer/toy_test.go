package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The toy fixture (testdata/toy) is GPT-2's byte tokens, its first 60 merges
// and <|endoftext|>, written by testdata/reference.py with the ids that
// OpenAI's algorithm gives in toy_expected.json. These tests always run.

func loadToy(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", "toy"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func toyMerges(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "toy", MergesFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return lines[1:] // drop "#version"
}

func TestToyMatchesReference(t *testing.T) {
	checkCases(t, loadToy(t), readCases(t, "toy_expected.json"))
}

func TestNewByteLevelEqualsToyFiles(t *testing.T) {
	merges := toyMerges(t)
	tok, err := NewByteLevel(merges)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.VocabSize(), 256+len(merges)+1; got != want {
		t.Errorf("VocabSize = %d, want %d", got, want)
	}
	// Same ids as the file-based toy, hence as GPT-2's vocab prefix.
	checkCases(t, tok, readCases(t, "toy_expected.json"))
	for s, want := range map[string]int{".": 13, " ": 220, "\n": 198, " t": 256, " the": 262, EndOfText: 256 + len(merges)} {
		if id, ok := tok.TokenID(s); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", s, id, ok, want)
		}
	}
}

func TestMergeLeftmostFirst(t *testing.T) {
	// GPT-2 merges equal-rank pairs left to right: with merges "a a" then
	// "a aa", "aaa" becomes "aa"+"a" (the left pair merges first, after which
	// "aa a" is not a merge). Merging the right pair first would give "a"+"aa"
	// and then "aaa".
	tok, err := NewByteLevel([]string{"a a", "a aa"})
	if err != nil {
		t.Fatal(err)
	}
	aa, _ := tok.TokenID("aa")
	a, _ := tok.TokenID("a")
	for text, want := range map[string][]int{
		"aaa":   {aa, a},
		"aaaa":  {aa, aa},
		"aaaaa": {aa, aa, a},
	} {
		got, _ := tok.Encode(text)
		if !equalInts(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestPretokenizeMatchesPythonRegex(t *testing.T) {
	var cases []struct {
		Text   string   `json:"text"`
		Pieces []string `json:"pieces"`
	}
	readJSON(t, "pieces.json", &cases)
	if len(cases) < 40 {
		t.Fatalf("pieces.json has %d cases", len(cases))
	}
	for _, c := range cases {
		var got []string
		pretokenize(c.Text, func(p string) { got = append(got, p) })
		if strings.Join(got, "\x00") != strings.Join(c.Pieces, "\x00") || len(got) != len(c.Pieces) {
			t.Errorf("pretokenize(%q)\n got %q\nwant %q", c.Text, got, c.Pieces)
		}
	}
}

func TestInvalidUTF8RoundTrips(t *testing.T) {
	tok := loadToy(t)
	for _, s := range []string{"\xff", "a\xc3", "\xe2\x82 x", "ok \x80\x80 ok"} {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Errorf("Decode(Encode(%q)) = %q, %v", s, back, err)
		}
	}
}

func TestByteTableIsGPT2s(t *testing.T) {
	// GPT-2's rule: printable bytes map to themselves, the other bytes in
	// order to U+0100, U+0101, ...
	next := rune(0x100)
	for _, b := range gpt2ByteOrder() {
		want := rune(b)
		if !((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) {
			want = next
			next++
		}
		if byteRune[b] != want {
			t.Errorf("byte 0x%02x maps to %U, want %U", b, byteRune[b], want)
		}
	}
	if next != 0x100+68 {
		t.Errorf("%d bytes remapped, want 68", next-0x100)
	}
}

func TestDecodeErrors(t *testing.T) {
	tok := loadToy(t)
	for _, ids := range [][]int{{-1}, {13, tok.VocabSize()}} {
		if _, err := tok.Decode(ids); err == nil || !strings.Contains(err.Error(), "outside the vocab") {
			t.Errorf("Decode(%v) error = %v", ids, err)
		}
	}
	if s, err := tok.Decode(nil); err != nil || s != "" {
		t.Errorf("Decode(nil) = %q, %v", s, err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "fetch-tokenizer.sh") {
		t.Errorf("Load(empty dir) error = %v; want the dir and the fix named", err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(VocabFile, "[1, 2]")
	write(MergesFile, "#version: 0.2\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), VocabFile) {
		t.Errorf("Load(bad vocab.json) error = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	good, err := NewByteLevel(nil)
	if err != nil {
		t.Fatal(err)
	}
	vocab := make(map[string]int)
	for id := 0; id < good.VocabSize()-1; id++ { // bytes only, no EndOfText
		s, _ := good.Token(id)
		vocab[byteLevel(s)] = id
	}
	if _, err := New(vocab, nil); err != nil {
		t.Fatalf("New(byte vocab): %v", err)
	}
	bad := []struct {
		name   string
		edit   func(map[string]int)
		merges []string
		want   string
	}{
		{"missing byte", func(v map[string]int) { delete(v, "!"); v["x!"] = 0 }, nil, "lacks the token"},
		{"sparse ids", func(v map[string]int) { v["ab"] = 999 }, nil, "dense"},
		{"duplicate id", func(v map[string]int) { v["ab"] = 5; delete(v, "Ā") }, nil, "more than one"},
		{"bad alphabet", func(v map[string]int) { v["\u4e00"] = 256 }, nil, "alphabet"},
		{"unknown merge", func(map[string]int) {}, []string{"a b"}, "not in"},
		{"malformed merge", func(map[string]int) {}, []string{"ab"}, "two tokens"},
	}
	for _, c := range bad {
		v := make(map[string]int, len(vocab))
		for k, id := range vocab {
			v[k] = id
		}
		c.edit(v)
		if _, err := New(v, c.merges); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error = %v, want it to mention %q", c.name, err, c.want)
		}
	}
}

// LoadDir reads the directory it is given, and DefaultDir when given "".
func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadDir(empty dir) error = %v; want the dir named", err)
	}
	other := t.TempDir()
	t.Setenv("CLIPCAP_TOKENIZER_DIR", other)
	if _, err := LoadDir(""); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf(`LoadDir("") error = %v; want DefaultDir %s named`, err, other)
	}
}
