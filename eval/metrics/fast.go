package metrics

import (
	"regexp"
	"strings"
	"sync"
)

// The fast path: most captions are plain words, spaces, commas and a final
// period ("A man riding a horse, on a beach."), and for those the PTB lexer's
// answer is known without running its rules. fastTokenize accepts a line
// only when it is made of
//
//   - words: an ASCII letter, then ASCII letters and digits;
//   - ASCII spaces;
//   - commas, each followed by a space or the end of the line;
//   - at most one period, straight after the last word, followed by
//     nothing but spaces;
//
// and then returns its words, lowercased and joined by single spaces,
// exactly what the lexer would leave after pycocoevalcap drops "," and ".".
// Why that is the lexer's answer (see ptbtable.go for the rules):
//
//   - At a word's first letter the WORD rule matches the whole word. A rule
//     can only match more by taking a character other than a letter, digit
//     or space (an apostrophe, hyphen, slash, '@', '+', '#', ...), none of
//     which such a line has, with two exceptions. Rules whose trailing
//     context starts with a space (`ABBREV4 / SPACE`, `ACRO / SPACENL`) do
//     match longer, but their token is still the whole word. And a final
//     "word." is one token when the word is an abbreviation or acronym
//     (abbrevRE below, built from the same macros), so such lines fall back.
//   - Ties go to the earlier rule; the only earlier rules a bare word can
//     match are the "cannot" / "gonna"-style splits, so lines holding those
//     words fall back.
//   - No rule needs the next line here: trailing contexts reach past the line
//     end only after an abbreviation or acronym with its period, which fell
//     back. A comma is the in-sentence punctuation token; followed by a
//     space or line break it cannot start a number (",5"). The period is a
//     token of its own (one dot: not an ellipsis). Spaces are skipped.
//
// TestFastPathMatchesLexer checks this claim against the lexer on generated
// lines, the abbreviation lists included.
func fastTokenize(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case c == ',':
			if i+1 < len(s) && s[i+1] != ' ' {
				return "", false
			}
			i++
		case isASCIILetter(c):
			j := i + 1
			for j < len(s) && (isASCIILetter(s[j]) || isASCIIDigit(s[j])) {
				j++
			}
			w := s[i:j]
			if splitWord(w) {
				return "", false
			}
			if j < len(s) && s[j] == '.' {
				if strings.TrimLeft(s[j+1:], " ") != "" || abbrev().MatchString(s[i:j+1]) {
					return "", false
				}
				j++
			}
			if len(b) > 0 {
				b = append(b, ' ')
			}
			for k := 0; k < len(w); k++ {
				c := w[k]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				b = append(b, c)
			}
			i = j
		default:
			return "", false
		}
	}
	return string(b), true
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isASCIIDigit(c byte) bool  { return c >= '0' && c <= '9' }

// splitWord reports the words that rules listed before WORD split
// ("cannot" -> "can" "not", "gonna" -> "gon" "na"), in any case.
func splitWord(w string) bool {
	if len(w) != 5 && len(w) != 6 {
		return false
	}
	for _, s := range []string{"cannot", "gonna", "gotta", "lemme", "gimme", "wanna"} {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

var (
	abbrevOnce sync.Once
	abbrevRe   *regexp.Regexp
)

// abbrev matches a "word." the lexer may keep as one token, or split
// depending on the next line: the abbreviation, acronym and "Pty."/"Co."
// rules' token parts, from the rule macros themselves.
func abbrev() *regexp.Regexp {
	abbrevOnce.Do(func() {
		ptyCo := grp(ci("pt")+"[eyEY]|"+ci("co")) + `\.`
		abbrevRe = regexp.MustCompile("^(?:" + strings.Join([]string{mABBREV1, mABBREV2, mABBREV3, mACRONYM, ptyCo}, "|") + ")$")
	})
	return abbrevRe
}

// plainWord returns the end of the word starting at byte pos of s when the
// lexer's token there is certainly that word, else pos. It is the fast
// path's argument applied to one token: an ASCII letter, then ASCII letters
// and digits, then an ASCII space, a line break or the end of the text. A
// rule matching more than the word must take a character other than a
// letter or digit, and the only ones that take a space or line break keep
// the word as their token (`ABBREV4 / SPACE`, `ACRO / SPACENL`; the others
// need a period or other punctuation inside the word, or start with
// '<' or a digit); the rules before WORD that a bare word ties with are the
// splitWord ones.
//
// At an ASCII space the only rule besides the catch-all is the one skipping
// a run of SPACE characters (TestSpaceOnlySkips), so the lexer skips that
// run (isPTBSpace) without trying the rules.
func plainWord(s string, pos int) int {
	if !isASCIILetter(s[pos]) {
		return pos
	}
	j := pos + 1
	for j < len(s) && (isASCIILetter(s[j]) || isASCIIDigit(s[j])) {
		j++
	}
	if j < len(s) && s[j] != ' ' && s[j] != '\n' {
		return pos
	}
	if splitWord(s[pos:j]) {
		return pos
	}
	return j
}

// isPTBSpace is the lexer's SPACE class (mSPACE).
func isPTBSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == 0xA0 || (r >= 0x2000 && r <= 0x200A) || r == 0x3000
}
