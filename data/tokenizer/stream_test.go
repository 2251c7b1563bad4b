package tokenizer

import (
	"bytes"
	"strings"
	"testing"
)

// Stream: one id array per argument (newlines kept) or per stdin line
// ("\r\n" stripped); --decode reverses it; bad input names its place.
func TestStream(t *testing.T) {
	tok := gpt2(t)
	var out bytes.Buffer
	if err := tok.Stream([]string{"a dog", "two\nlines"}, nil, &out, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("two arguments gave %q", out.String())
	}
	var back bytes.Buffer
	if err := tok.Stream(nil, strings.NewReader(strings.Join(lines, "\r\n")+"\r\n"), &back, true); err != nil {
		t.Fatal(err)
	}
	if back.String() != "a dog\ntwo\nlines\n" {
		t.Fatalf("round trip gave %q", back.String())
	}
	out.Reset()
	if err := tok.Stream(nil, strings.NewReader("a\n\nb"), &out, false); err != nil || strings.Count(out.String(), "\n") != 3 || !strings.Contains(out.String(), "[]") {
		t.Fatalf("three stdin lines (one empty) gave %q, %v", out.String(), err)
	}
	err := tok.Stream(nil, strings.NewReader("[1, 2]\nnot ids\n"), &out, true)
	if err == nil || !strings.Contains(err.Error(), "stdin line 2") {
		t.Fatalf("bad decode input: %v", err)
	}
}
