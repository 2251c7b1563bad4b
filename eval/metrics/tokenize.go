package metrics

import (
	"strings"
	"unicode"
)

// punctuations are the tokens pycocoevalcap drops after PTB tokenization.
// It compares them after lowercasing, so "-LRB-" never matches "-lrb-":
// bracket tokens survive into the scores, exactly as in the toolkit.
var punctuations = map[string]bool{
	"''": true, "'": true, "``": true, "`": true, "-LRB-": true, "-RRB-": true, "-LCB-": true, "-RCB-": true,
	".": true, "?": true, "!": true, ",": true, ":": true, "-": true, "--": true, "...": true, ";": true,
}

// lineBreaks are the characters PTBLexer turns into a line break. pycocoevalcap
// only replaces "\n" inside a caption, so any other of these shifts every
// later caption onto the wrong image there; we read them as spaces instead.
var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ", "\u2028", " ", "\u2029", " ", "\v", " ", "\f", " ")

// Tokenize returns captions as pycocoevalcap's PTBTokenizer leaves them:
// Stanford PTB tokens (CoreNLP 3.4.1, -preserveLines -lowerCase), its
// punctuation tokens removed, joined by single spaces.
//
// Like the toolkit, which tokenizes all captions of one call as lines of a
// single file, a caption's tokens may depend on the caption after it (an
// abbreviation at a line end followed by a capitalised word); pass captions
// in the order the toolkit would (see Score).
//
// The result is exactly that of lexing the joined lines in one pass (see
// tokenizeOnePass in the tests); plan.go explains how lines are lexed apart,
// in parallel, and fast.go which lines skip the lexer altogether.
func Tokenize(captions []string) []string {
	p := newPlan(captions)
	out := make([]string, len(captions))
	parallel(len(captions), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if p.dep[i] {
				continue
			}
			if s, ok := fastTokenize(p.lines[i]); ok {
				out[i] = s
			} else {
				out[i] = p.lexLine(i)
			}
		}
	})
	p.lexDependent(out)
	return out
}

// filterPunct mirrors ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS).
func filterPunct(toks []string) string {
	line := strings.TrimRightFunc(strings.Join(toks, " "), isPySpace)
	kept := make([]string, 0, len(toks))
	for _, w := range strings.Split(line, " ") {
		if !punctuations[w] {
			kept = append(kept, w)
		}
	}
	return strings.Join(kept, " ")
}

// isPySpace reports whether Python's str.split() and str.strip() treat r
// as whitespace (unicode.IsSpace plus the ASCII separators 0x1C-0x1F).
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyWords is Python's s.split(): BLEU and CIDEr split tokenized captions
// this way, so a non-breaking space inside a PTB token ("1 1/2") splits it.
func pyWords(s string) []string { return strings.FieldsFunc(s, isPySpace) }

// javaLower is Java's String.toLowerCase(Locale.ENGLISH), which differs from
// per-rune lowering for dotted capital I and a word-final capital sigma.
func javaLower(s string) string {
	if !strings.ContainsAny(s, "\u0130\u03A3") {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == '\u0130':
			b.WriteString("i\u0307")
		case r == '\u03A3' && finalCased(rs, i):
			b.WriteRune('\u03C2')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalCased approximates Java's final-sigma test: within the same word
// (Java asks a word BreakIterator; we take runs of letters, marks, digits
// and case-ignorable characters) a cased letter comes before i and none after.
func finalCased(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0 && wordish(rs[j]); j-- {
		if cased(rs[j]) {
			before = true
			break
		}
	}
	if !before {
		return false
	}
	for k := i + 1; k < len(rs) && wordish(rs[k]); k++ {
		if cased(rs[k]) {
			return false
		}
	}
	return true
}

func cased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func wordish(r rune) bool {
	switch r {
	case '\'', '.', ':', '_', '\u00AD', '\u00B7', '\u2019', '\u2027':
		return true
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.Nd, unicode.Cf)
}
