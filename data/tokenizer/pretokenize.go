package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// GPT-2 splits text into pieces with the Python `regex` pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// and runs BPE on each piece separately. Go's regexp has no lookahead, and
// sugarme/tokenizer's ByteLevel pre-tokenizer drops the two whitespace
// alternatives (it keeps unmatched gaps whole), so "a\n\nb" gives it one
// "\n\n" piece (id 628) where GPT-2 gives "\n","\n" (198, 198). This file is
// a hand-written scanner with the regex's exact leftmost-alternative
// semantics instead.
//
// Character classes follow Python's `regex` module, which OpenAI's encoder
// uses: \s is the Unicode White_Space property (= unicode.IsSpace), \p{L} and
// \p{N} are the general categories. (JavaScript's \s, used by the npm port,
// differs on U+0085 and U+FEFF; we follow Python.) Invalid UTF-8 bytes are
// treated as U+FFFD, a symbol, and keep their original bytes.

type charClass uint8

const (
	classLetter charClass = iota
	classNumber
	classSpace
	classOther
)

func classify(r rune) charClass {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	default:
		return classOther
	}
}

// contractions are tried in the regex's order; they are case-sensitive, so
// "'S" is not one (GPT-2 splits it "'", "S").
var contractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// pretokenize calls emit with each GPT-2 piece of text, in order. The pieces
// are substrings of text and concatenate back to it.
func pretokenize(text string, emit func(piece string)) {
	for i := 0; i < len(text); {
		j := pieceEnd(text, i)
		emit(text[i:j])
		i = j
	}
}

// pieceEnd returns where the regex match starting at byte i ends.
func pieceEnd(s string, i int) int {
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == '\'' {
		for _, c := range contractions {
			if strings.HasPrefix(s[i+1:], c) {
				return i + 1 + len(c)
			}
		}
	}
	// " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one optional leading
	// space (U+0020 only) joins the run that follows it.
	if r == ' ' && i+w < len(s) {
		r2, w2 := utf8.DecodeRuneInString(s[i+w:])
		if c := classify(r2); c != classSpace {
			return runEnd(s, i+w+w2, c)
		}
	}
	if c := classify(r); c != classSpace {
		return runEnd(s, i+w, c)
	}
	// Whitespace. "\s+(?!\S)" takes the whole run when it ends the text;
	// before a non-space it backtracks one character, leaving the last one
	// to lead the next word (" word") — if that leaves nothing, "\s+" takes
	// the single character.
	last, j := i, i+w
	for j < len(s) {
		r, w := utf8.DecodeRuneInString(s[j:])
		if !unicode.IsSpace(r) {
			break
		}
		last = j
		j += w
	}
	if j == len(s) || last == i {
		return j
	}
	return last
}

// runEnd extends a run of class c from byte j.
func runEnd(s string, j int, c charClass) int {
	for j < len(s) {
		r, w := utf8.DecodeRuneInString(s[j:])
		if classify(r) != c {
			break
		}
		j += w
	}
	return j
}
