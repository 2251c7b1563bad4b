package metrics

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The PTB lexer engine: JFlex semantics over the rules in ptbrules.go.
//
// JFlex picks, at each position, the rule with the longest match (for a rule
// r1/r2 with trailing context, the length of r1 followed by r2), ties going to
// the rule listed first; the token is the r1 part. JFlex 1.5 reads UTF-16
// code units, so a character outside the Basic Multilingual Plane is two
// units that no rule but the catch-all accepts: the tokenizer drops emoji
// unless they sit inside a URL, e-mail address or SGML tag. We lex a string
// holding one rune per UTF-16 unit, with surrogate units replaced by a
// private-use rune that every rule treats the same way, and take token text
// from the original units.

const surrogateStandIn = '\uE000'

// newlineToken is what the lexer returns for a line break (tokenizeNLs).
const newlineToken = "*NL*"

type action func(u []uint16) (out string, emit bool, keep int)

type rule struct {
	re     *regexp.Regexp // ^r1 r2, leftmost-longest
	r1, r2 *regexp.Regexp // anchored full matches, for splitting a variable trailing context
	trail  int            // fixed length of r2 in units; -1: variable
	first  runeSet
	reach  reach
	act    action
}

// newRule compiles r1 with optional trailing context r2. trail is r2's
// fixed length in UTF-16 units, or -1 when it varies.
func newRule(r1, r2 string, trail int, act action) *rule {
	full := "^(?:" + r1 + ")"
	if r2 != "" {
		full += "(?:" + r2 + ")"
	}
	re := regexp.MustCompile(full)
	re.Longest()
	rl := &rule{re: re, trail: trail, act: act}
	if r2 == "" {
		rl.trail = 0
	} else if trail < 0 {
		rl.r1 = regexp.MustCompile("^(?:" + r1 + ")$")
		rl.r2 = regexp.MustCompile("^(?:" + r2 + ")$")
	}
	parsed, err := syntax.Parse(full, syntax.Perl)
	if err != nil {
		panic("metrics: bad PTB rule " + full + ": " + err.Error()) // programming error in a constant table
	}
	simple := parsed.Simplify()
	rl.first, _ = firstSet(simple)
	rl.reach = reachOf(simple)
	return rl
}

type lexer struct {
	rules []*rule
	ascii [128][]int // candidate rules by first rune
	other []int      // rules that may start with a non-ASCII rune
}

func newLexer(rules []*rule) *lexer {
	lx := &lexer{rules: rules}
	for i, r := range rules {
		for c := rune(0); c < 128; c++ {
			if r.first.has(c) {
				lx.ascii[c] = append(lx.ascii[c], i)
			}
		}
		if r.first.all || hasNonASCII(r.first) {
			lx.other = append(lx.other, i)
		}
	}
	return lx
}

func hasNonASCII(s runeSet) bool {
	for i := 1; i < len(s.ranges); i += 2 {
		if s.ranges[i] >= 128 {
			return true
		}
	}
	return false
}

// lexInput is text prepared for the lexer: ls holds one rune per UTF-16
// unit of units (surrogates replaced), and unitAt maps each byte of ls to its
// unit index, with one extra entry for the end.
type lexInput struct {
	units  []uint16
	ls     string
	unitAt []int32
}

func newLexInput(text string) *lexInput {
	units := utf16.Encode([]rune(text))
	var b strings.Builder
	b.Grow(len(text))
	unitAt := make([]int32, 0, len(text)+1)
	for i, u := range units {
		r := rune(u)
		if utf16.IsSurrogate(r) {
			r = surrogateStandIn
		}
		n := utf8.RuneLen(r)
		for j := 0; j < n; j++ {
			unitAt = append(unitAt, int32(i))
		}
		b.WriteRune(r)
	}
	unitAt = append(unitAt, int32(len(units)))
	return &lexInput{units: units, ls: b.String(), unitAt: unitAt}
}

// lex returns the tokens of text, newlines as newlineToken, trying every
// rule at every token (no shortcuts: the reference the tests compare with).
func (lx *lexer) lex(text string) []string {
	var toks []string
	lx.scan(newLexInput(text), 0, false, func(tok string, _ int) bool {
		toks = append(toks, tok)
		return true
	})
	return toks
}

// scan lexes in.ls from byte pos, handing each token and the byte position
// after it to emit, until the text ends or emit returns false. With
// shortcuts, plain words and spaces skip the rules (see plainWord).
func (lx *lexer) scan(in *lexInput, pos int, shortcuts bool, emit func(tok string, next int) bool) {
	ls, units, unitAt := in.ls, in.units, in.unitAt
	for pos < len(ls) {
		c, _ := utf8.DecodeRuneInString(ls[pos:])
		if shortcuts {
			if c == ' ' {
				// The space rule takes the whole run of spaces.
				for pos < len(ls) {
					r, size := utf8.DecodeRuneInString(ls[pos:])
					if !isPTBSpace(r) {
						break
					}
					pos += size
				}
				continue
			}
			if end := plainWord(ls, pos); end > pos {
				if !emit(ls[pos:end], end) {
					return
				}
				pos = end
				continue
			}
		}
		cands := lx.other
		if c < 128 {
			cands = lx.ascii[c]
		}
		best, bestLen := -1, 0
		rest := ls[pos:]
		nl, sp := -2, -2
		for _, i := range cands {
			in := rest
			if shortcuts {
				in = lx.rules[i].reach.cut(rest, &nl, &sp)
			}
			if loc := lx.rules[i].re.FindStringIndex(in); loc != nil && loc[1] > bestLen {
				best, bestLen = i, loc[1]
			}
		}
		if best < 0 {
			// Unreachable: the catch-all rule accepts any rune.
			pos += utf8.RuneLen(c)
			continue
		}
		r := lx.rules[best]
		tokBytes := bestLen
		switch {
		case r.trail > 0:
			tokBytes = bytesForUnitsBack(rest[:bestLen], r.trail)
		case r.trail < 0:
			tokBytes = splitTrailing(r, rest[:bestLen])
		}
		u0 := int(unitAt[pos])
		u1 := int(unitAt[pos+tokBytes])
		out, ok, keep := r.act(units[u0:u1])
		// keep counts units; map it back to bytes of the lexing string.
		pos = byteOfUnit(ls, pos, keep)
		if ok && !emit(out, pos) {
			return
		}
	}
}

// bytesForUnitsBack is the byte length of s without its last n runes.
func bytesForUnitsBack(s string, n int) int {
	end := len(s)
	for ; n > 0 && end > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:end])
		end -= size
	}
	return end
}

// splitTrailing finds the longest r1 prefix of m whose rest matches r2.
func splitTrailing(r *rule, m string) int {
	for k := len(m) - 1; k > 0; k-- {
		if !utf8.RuneStart(m[k]) {
			continue
		}
		if r.r1.MatchString(m[:k]) && r.r2.MatchString(m[k:]) {
			return k
		}
	}
	return len(m)
}

// byteOfUnit advances n runes (units) from byte pos of s.
func byteOfUnit(s string, pos, n int) int {
	for ; n > 0 && pos < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[pos:])
		pos += size
	}
	return pos
}

func ustr(u []uint16) string { return string(utf16.Decode(u)) }
