package tokenizer

import (
	"strings"
	"sync"
	"testing"
)

// These tests need GPT-2's real vocab (scripts/fetch-tokenizer.sh) and skip
// without it; toy_test.go covers the same code paths with a committed vocab.

func TestGPT2MatchesReference(t *testing.T) {
	tok := gpt2(t)
	// expected.json: ids from npm gpt-3-encoder, cross-checked with an
	// implementation of OpenAI's encoder.py by testdata/reference.py.
	cases := readCases(t, "expected.json")
	if len(cases) < 40 {
		t.Fatalf("expected.json has %d cases, want at least 40", len(cases))
	}
	checkCases(t, tok, cases)
}

func TestGPT2PythonWhitespaceClasses(t *testing.T) {
	// Strings where JavaScript's \s and Python regex's \s disagree; ids from
	// the Python (OpenAI) algorithm, which we follow.
	checkCases(t, gpt2(t), readCases(t, "python_only.json"))
}

func TestGPT2Vocab(t *testing.T) {
	tok := gpt2(t)
	if n := tok.VocabSize(); n != 50257 {
		t.Errorf("VocabSize = %d, want 50257", n)
	}
	for s, want := range map[string]int{".": 13, "!": 0, " ": 220, "\n": 198, " the": 262, "\n\n": 628, EndOfText: 50256} {
		if id, ok := tok.TokenID(s); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", s, id, ok, want)
		}
		if txt, ok := tok.Token(want); !ok || txt != s {
			t.Errorf("Token(%d) = %q, %v; want %q", want, txt, ok, s)
		}
	}
	if _, ok := tok.TokenID(" not-a-single-token"); ok {
		t.Error("TokenID of a multi-token string reported ok")
	}
	// GPT-2's encoder treats the special token's text as plain text.
	ids, _ := tok.Encode(EndOfText)
	if len(ids) < 2 {
		t.Errorf("Encode(%q) = %v: special token text must be split like plain text", EndOfText, ids)
	}
}

func TestGPT2PartialDecode(t *testing.T) {
	tok := gpt2(t)
	// One emoji is several tokens; decoding them one at a time and joining
	// must give the original bytes back.
	text := "family 👨‍👩‍👧‍👦 ok"
	ids, _ := tok.Encode(text)
	var sb strings.Builder
	for _, id := range ids {
		s, err := tok.Decode([]int{id})
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(s)
	}
	if sb.String() != text {
		t.Errorf("piecewise decode = %q, want %q", sb.String(), text)
	}
}

func TestGPT2Concurrent(t *testing.T) {
	tok := gpt2(t)
	cases := readCases(t, "expected.json")
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range cases {
				got, _ := tok.Encode(c.Text)
				if !equalInts(got, c.IDs) {
					errs <- c.Text
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs", s)
	}
}

var benchCaption = "A man riding a wave on top of a surfboard."

func BenchmarkEncodeCaption(b *testing.B) {
	tok := gpt2(b)
	b.SetBytes(int64(len(benchCaption)))
	for b.Loop() {
		tok.Encode(benchCaption)
	}
}

// BenchmarkEncodeUncached measures BPE itself: the cache is dropped before
// every encode of a ~6 KB text of varied words.
func BenchmarkEncodeUncached(b *testing.B) {
	tok := gpt2(b)
	var sb strings.Builder
	for _, c := range readCases(b, "expected.json") {
		sb.WriteString(c.Text)
		sb.WriteString("\n")
	}
	text := strings.Repeat(sb.String(), 3)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.mu.Lock()
		tok.cache = make(map[string][]int)
		tok.mu.Unlock()
		tok.Encode(text)
	}
}

func BenchmarkLoad(b *testing.B) {
	gpt2(b)
	for b.Loop() {
		if _, err := LoadDefault(); err != nil {
			b.Fatal(err)
		}
	}
}
