package metrics

import (
	"strings"
	"unicode"
)

// Lexing lines apart.
//
// The toolkit lexes all captions of a call as one text, lines joined by
// "\n". Lexing each line on its own gives the same tokens when two things
// hold, and a plan records, line by line, whether they do:
//
//  1. No token crosses a line break, so lexing reaches each line's start
//     afresh. A token's text (the r1 part of a rule) can hold "\n" only in
//     an SGML tag's quoted attribute value, and a tag starts with '<'.
//  2. Every match the lexer tries from the line reaches no further than the
//     text we hand it. Without SGML, the only parts of the rules that can
//     pass a line break are runs of spaces and line breaks (the acronym rule
//     `U.S. <spaces/newlines> The`), after which a short word, an upper-case
//     letter or a digit, and one more character, decide; or one or two
//     single characters (`[^A-Za-z]`, `(?s:..)`). So a window of the line, the
//     blank lines after it, the next non-blank line and the line after that,
//     holds them all.
//
// A line is independent when no line of its window contains '<' (the SGML
// tag, in a token or inside a trailing context, starts within the window).
// The other lines are lexed in one pass over the whole remaining text, as
// the toolkit does, from the first such line until the pass reaches, afresh,
// the start of an independent line again.
type plan struct {
	lines []string // captions with in-caption line breaks made spaces
	end   []int    // last line of each line's window
	dep   []bool   // line must be lexed in the one-pass way
}

func newPlan(captions []string) *plan {
	n := len(captions)
	p := &plan{lines: make([]string, n), end: make([]int, n), dep: make([]bool, n)}
	blank := make([]bool, n)
	lt := make([]bool, n)
	parallel(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			l := lineBreaks.Replace(captions[i])
			p.lines[i] = l
			lt[i] = strings.IndexByte(l, '<') >= 0
			blank[i] = isBlank(l)
		}
	})
	// Walk backwards keeping the next non-blank line and the next line
	// holding '<'.
	nextText, nextLT := n, n
	for i := n - 1; i >= 0; i-- {
		// The window: line i, the blank lines after it, the next non-blank
		// line j and the line after j (or up to the last line).
		e := n - 1
		if nextText < n {
			e = min(nextText+1, n-1)
		}
		p.end[i] = e
		if lt[i] {
			nextLT = i
		}
		p.dep[i] = nextLT <= e
		if !blank[i] {
			nextText = i
		}
	}
	return p
}

// isBlank reports whether a line holds only white space. Every character
// the lexer's SPACE and NEWLINE classes accept is white space to
// unicode.IsSpace, so a run of spaces and line breaks never passes a
// non-blank line.
func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// lexLine tokenizes independent line i within its window.
func (p *plan) lexLine(i int) string {
	in := newLexInput(strings.Join(p.lines[i:p.end[i]+1], "\n"))
	var toks []string
	ptb().scan(in, 0, true, func(tok string, _ int) bool {
		if tok == newlineToken {
			return false
		}
		toks = append(toks, javaLower(tok))
		return true
	})
	return filterPunct(toks)
}

// lexDependent fills out for the dependent lines, lexing the whole text
// from each run of them as one pass, and counting lines by line-break
// tokens as the toolkit does (a tag that swallows a line break shifts every
// later caption onto the next image there, and here).
func (p *plan) lexDependent(out []string) {
	n := len(p.lines)
	var in *lexInput
	var starts []int // byte offset of each line in in.ls
	for i := 0; i < n; i++ {
		if !p.dep[i] {
			continue
		}
		if in == nil {
			in = newLexInput(strings.Join(p.lines, "\n"))
			starts = make([]int, 1, n)
			for k := 0; k < len(in.ls); k++ {
				if in.ls[k] == '\n' {
					starts = append(starts, k+1)
				}
			}
		}
		line, resumed := i, false
		var cur []string
		ptb().scan(in, starts[i], true, func(tok string, next int) bool {
			if tok != newlineToken {
				cur = append(cur, javaLower(tok))
				return true
			}
			if line < n {
				out[line] = filterPunct(cur)
			}
			cur = cur[:0]
			line++
			if line < n && !p.dep[line] && next == starts[line] {
				resumed = true
				return false
			}
			return true
		})
		if !resumed {
			// The pass ran to the end of the text: flush its last line and
			// clear the lines it never reached.
			if line < n {
				out[line] = filterPunct(cur)
			}
			for k := line + 1; k < n; k++ {
				out[k] = ""
			}
			return
		}
		i = line - 1 // the loop's i++ moves on to the independent line
	}
}
