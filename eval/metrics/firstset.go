package metrics

import (
	"regexp/syntax"
	"unicode"
)

// runeSet is a set of runes as sorted [lo, hi] pairs, as regexp/syntax keeps
// character classes. all marks "any rune" (a conservative answer).
type runeSet struct {
	ranges []rune
	all    bool
}

func (s *runeSet) add(o runeSet) {
	if o.all {
		s.all = true
		return
	}
	s.ranges = append(s.ranges, o.ranges...)
}

func (s runeSet) has(r rune) bool {
	if s.all {
		return true
	}
	for i := 0; i+1 < len(s.ranges); i += 2 {
		if r >= s.ranges[i] && r <= s.ranges[i+1] {
			return true
		}
	}
	return false
}

// firstSet returns the runes a match of re can start with, and whether re
// can match the empty string. The lexer uses it to skip, at each position,
// the rules that cannot start there; being conservative (all=true) is always
// safe, only slower.
func firstSet(re *syntax.Regexp) (runeSet, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return runeSet{}, true
		}
		r := re.Rune[0]
		s := runeSet{ranges: []rune{r, r}}
		if re.Flags&syntax.FoldCase != 0 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				s.ranges = append(s.ranges, f, f)
			}
		}
		return s, false
	case syntax.OpCharClass:
		return runeSet{ranges: append([]rune(nil), re.Rune...)}, false
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return runeSet{all: true}, false
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return runeSet{}, true
	case syntax.OpCapture:
		return firstSet(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		s, _ := firstSet(re.Sub[0])
		return s, true
	case syntax.OpPlus:
		return firstSet(re.Sub[0])
	case syntax.OpRepeat:
		s, nullable := firstSet(re.Sub[0])
		return s, nullable || re.Min == 0
	case syntax.OpConcat:
		var s runeSet
		for _, sub := range re.Sub {
			f, nullable := firstSet(sub)
			s.add(f)
			if !nullable {
				return s, false
			}
		}
		return s, true
	case syntax.OpAlternate:
		var s runeSet
		anyNullable := false
		for _, sub := range re.Sub {
			f, nullable := firstSet(sub)
			s.add(f)
			anyNullable = anyNullable || nullable
		}
		return s, anyNullable
	}
	return runeSet{all: true}, true
}
