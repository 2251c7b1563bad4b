package metrics

import (
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// How far a rule's match can reach, so the lexer hands each regexp only the
// text it could possibly match: the cost of Go's backtracking matcher grows
// with the length of its input. A match of a regexp that accepts no space
// ends before the first space; one of a regexp that accepts no line break
// ends before the first line break; one of at most n characters, within n.
// Cutting the input there cannot change the leftmost-longest match, as long
// as no assertion looks at the end of the input (the rules have none but
// their leading ^; reachOf gives up on any other).

// reach is what reachOf found for one rule.
type reach struct {
	clip     bool // false: hand the regexp all the text
	space    bool // the regexp may match an ASCII space
	newline  bool // the regexp may match "\n"
	maxRunes int  // longest match in runes; -1: unbounded
}

func reachOf(re *syntax.Regexp) reach {
	r := reach{clip: true}
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpEndLine, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
			r.clip = false
		case syntax.OpLiteral:
			for _, c := range re.Rune {
				r.space = r.space || c == ' '
				r.newline = r.newline || c == '\n'
			}
		case syntax.OpCharClass:
			for i := 0; i+1 < len(re.Rune); i += 2 {
				lo, hi := re.Rune[i], re.Rune[i+1]
				r.space = r.space || (lo <= ' ' && ' ' <= hi)
				r.newline = r.newline || (lo <= '\n' && '\n' <= hi)
			}
		case syntax.OpAnyCharNotNL:
			r.space = true
		case syntax.OpAnyChar:
			r.space, r.newline = true, true
		}
		for _, sub := range re.Sub {
			walk(sub)
		}
	}
	walk(re)
	r.maxRunes = maxRunes(re)
	return r
}

// maxRunes is the most runes a match of re can hold, or -1 for no bound.
func maxRunes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpQuest:
		return maxRunes(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpRepeat:
		n := maxRunes(re.Sub[0])
		if re.Max < 0 || n < 0 {
			return -1
		}
		return re.Max * n
	case syntax.OpConcat:
		total := 0
		for _, sub := range re.Sub {
			n := maxRunes(sub)
			if n < 0 {
				return -1
			}
			total += n
		}
		return total
	case syntax.OpAlternate:
		most := 0
		for _, sub := range re.Sub {
			n := maxRunes(sub)
			if n < 0 {
				return -1
			}
			most = max(most, n)
		}
		return most
	}
	return 0 // empty-width operators
}

// cut returns the part of rest (the lexing string from the current
// position) that a match of the rule can reach. nl and sp cache the
// positions of the first line break and the first space or line break in
// rest across the rules tried at one position (-2: not searched yet).
func (r *reach) cut(rest string, nl, sp *int) string {
	if !r.clip {
		return rest
	}
	end := len(rest)
	if !r.newline {
		if *nl == -2 {
			if *nl = strings.IndexByte(rest, '\n'); *nl < 0 {
				*nl = len(rest)
			}
		}
		end = min(end, *nl)
	}
	if !r.space && !r.newline {
		if *sp == -2 {
			*sp = strings.IndexAny(rest, " \n")
			if *sp < 0 {
				*sp = len(rest)
			}
		}
		end = min(end, *sp)
	}
	if r.maxRunes >= 0 {
		k := 0
		for n := 0; n < r.maxRunes && k < end; n++ {
			_, size := utf8.DecodeRuneInString(rest[k:])
			k += size
		}
		end = min(end, k)
	}
	return rest[:end]
}
