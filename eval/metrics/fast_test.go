package metrics

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tokenizeOnePass is Tokenize as first written: all lines joined and lexed
// in one pass, lines counted by line-break tokens. It is the reference the
// split, parallel and fast-path Tokenize must equal token for token.
func tokenizeOnePass(captions []string) []string {
	lines := make([]string, len(captions))
	for i, c := range captions {
		lines[i] = lineBreaks.Replace(c)
	}
	toks := ptb().lex(strings.Join(lines, "\n"))
	out := make([]string, len(captions))
	line := 0
	var cur []string
	flush := func() {
		if line < len(out) {
			out[line] = filterPunct(cur)
		}
		cur = cur[:0]
		line++
	}
	for _, t := range toks {
		if t == newlineToken {
			flush()
			continue
		}
		cur = append(cur, javaLower(t))
	}
	flush()
	return out
}

func compareTokenize(t *testing.T, name string, caps []string) {
	t.Helper()
	got, want := Tokenize(caps), tokenizeOnePass(caps)
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 10 {
				t.Errorf("%s: line %d %q: got %q, one pass %q", name, i, caps[i], got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d lines differ", name, bad, len(caps))
	}
}

// testCaptions are the adversarial tokenizer cases and the parity inputs.
func testCaptions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tokenizer_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Captions []string `json:"captions"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	caps := c.Captions
	for _, name := range []string{"main", "varied"} {
		ann, err := LoadAnnotations(filepath.Join("testdata", "parity_"+name+"_annotations.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ann.Captions {
			caps = append(caps, a.Caption)
		}
	}
	return caps
}

// TestTokenizeMatchesOnePass compares Tokenize with the one-pass reference
// on the test captions in file order, shuffled, with lines of spaces, tags
// and quotes spread among them (tags whose quoted attributes swallow line
// breaks shift every later line, in both).
func TestTokenizeMatchesOnePass(t *testing.T) {
	caps := testCaptions(t)
	compareTokenize(t, "files", caps)

	// Lines whose tokens hang on lines after them: an acronym before a
	// follower word past blank lines (the follower needs the line break
	// after it), before a tag whose quoted attribute spans lines, a number
	// after "no.", and tags that swallow line breaks.
	for _, c := range [][]string{
		{"made in the U.S.", "The", "x"},
		{"A.", "", " ", "The", "x"},
		{"A.", " ", "The"},
		{"A.", "<a b=\"x", "y", "z\"> w", "q"},
		{"A.", "<a b=\"x", "y", "z", "w\">", "q"},
		{"Jan.", "2 dogs"},
		{"no.", "5"},
		{"x <a b='1", "2' > y", "z", "plain words"},
		{"plain", "<a b=\"1", "2\">", "plain words", "A.", "The end"},
		// A word is a token of its own only before a space or line break.
		{"a dog,cat-like thing", "one,two-three, four", "x,y.com z"},
	} {
		compareTokenize(t, "cross-line", c)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	extra := []string{"", " ", "\u00a0\u3000", "The", "THE END", "2 dogs", "<b>", "<a href=\"x", "y\">", "ok\"> done",
		"<p class='q", "' >", "U.S.", "Jan.", "no.", "A.", "x <i> y", "Inc.", "<!-- c", "--> d", "\u0085", "'s"}
	for round := 0; round < 6; round++ {
		mixed := make([]string, 0, 600)
		for len(mixed) < 600 {
			if rng.IntN(4) == 0 {
				mixed = append(mixed, extra[rng.IntN(len(extra))])
			} else {
				mixed = append(mixed, caps[rng.IntN(len(caps))])
			}
		}
		// Some rounds without tags: the all-independent case.
		if round%2 == 0 {
			for i, c := range mixed {
				mixed[i] = strings.ReplaceAll(c, "<", "(")
			}
		}
		compareTokenize(t, "mixed", mixed)
	}
}

// TestFastPathMatchesLexer checks fastTokenize's claim: whenever it accepts
// a line, the lexer, whatever line comes next, agrees with it.
func TestFastPathMatchesLexer(t *testing.T) {
	var words []string
	letters := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for _, a := range letters {
		words = append(words, string(a))
		for _, b := range letters {
			words = append(words, string(a)+string(b))
		}
	}
	// Words of the abbreviation, title, state, month and split rules, and
	// near misses, in three cases each.
	for _, w := range strings.Fields(`Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec Mon Tue Tues Wed Thu
		Thurs Fri Ala Ariz Az Ark Calif Colo Conn Ct Dak Del Fla Ga Ill Ind Kan Kans Ky La Mass Md Mich Minn
		Miss Mo Mont Neb Nev Okla Ore Pa Penn Tenn Tex Va Vt Wash Wis Wisc Wyo Inc Co Cos Corp Pty Pte Ptys
		Ltd Plc Rt Bancorp Bhd Assn Univ Intl Sys tel est ext sq Jr Sr Bros Blvd Rd Esq etc al seq Bldg Mr Mrs
		Ms Dr Drs Prof Profs Sen Sens Rep Reps Atty Attys Lt Col Gen Messrs Gov Govs Adm Rev Maj Sgt Cpl Pvt
		Capt St Ste Ave Pres Lieut Hon Brig Cmdr Comdr Pfc Spc Supt Supts Det Mt Ft Adj Adv Asst Assoc Ens
		Insp Mlle Mme Msgr Sfc vs Alex Wm Jos Cie cf TREAS Ph Invt Elec Natl Mfg Mtg Dept ca fig figs prop no
		nos art bldg pp op pt co lim cannot gonna gotta lemme gimme wanna cannots gonnas horse man the a I
		street com net org edu www http jpg html x1 w123 a1b2 U2 Jans Inca Cor Dept2`) {
		words = append(words, w, strings.ToLower(w), strings.ToUpper(w))
	}
	nexts := []string{"", "The man", "the man", "2 dogs", " 2", "<b> x", "A", "Mr. Smith", "   ", "com", ".com", ", x"}
	rng := rand.New(rand.NewPCG(3, 4))
	accepted, checked := 0, 0
	check := func(line string) {
		got, ok := fastTokenize(line)
		if !ok {
			return
		}
		accepted++
		// The empty next line (a line end) and two others, in turn.
		for _, next := range []string{"", nexts[accepted%len(nexts)], nexts[(accepted*7+3)%len(nexts)]} {
			checked++
			want := tokenizeOnePass([]string{line, next})[0]
			if got != want {
				t.Fatalf("fast path %q (next line %q): %q, lexer %q", line, next, got, want)
			}
		}
	}
	for _, w := range words {
		check(w)
		check(w + ".")
		check("a " + w + ".  ")
		check(w + ", " + w + " " + w)
		check("  " + w + " ,")
	}
	// Random lines from the fast alphabet and a little outside it.
	pieces := []string{" ", " ", ",", ", ", ".", "  ", "'", "-", "3", "a.b"}
	for k := 0; k < 3000; k++ {
		var b strings.Builder
		for n := 1 + rng.IntN(8); n > 0; n-- {
			if rng.IntN(3) == 0 {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			} else {
				b.WriteString(words[rng.IntN(len(words))])
				b.WriteString(" ")
			}
		}
		if rng.IntN(2) == 0 {
			b.WriteString(words[rng.IntN(len(words))] + ".")
		}
		check(b.String())
	}
	// The fast path must take most plain lines, or it buys nothing.
	if accepted < len(words)*3 {
		t.Errorf("fast path took only %d lines", accepted)
	}
	t.Logf("fast path: %d lines accepted, %d line pairs checked", accepted, checked)

	// And it refuses what it must.
	for _, line := range []string{"a man's dog", "U.S.", "Jan.", "I.", "a cannot b", "2 dogs", "a,b", "a.b", "a b. c", "x-ray", "café"} {
		if s, ok := fastTokenize(line); ok {
			t.Errorf("fast path took %q (gave %q)", line, s)
		}
	}
}

// TestSpaceOnlySkips backs the lexer's space shortcut: at an ASCII space
// the only candidate rules are the space-skipping rule and the catch-all,
// both emitting nothing, and isPTBSpace is the SPACE class.
func TestSpaceOnlySkips(t *testing.T) {
	re := regexp.MustCompile("^" + mSPACE + "$")
	for r := rune(0); r <= 0xFFFF; r++ {
		if re.MatchString(string(r)) != isPTBSpace(r) {
			t.Errorf("isPTBSpace(%U) = %v, SPACE class disagrees", r, isPTBSpace(r))
		}
	}
	lx := ptb()
	cands := lx.ascii[' ']
	if len(cands) != 2 || cands[1] != len(lx.rules)-1 {
		t.Fatalf("rules that may start at a space: %v", cands)
	}
	for _, i := range cands {
		if _, emit, _ := lx.rules[i].act([]uint16{' '}); emit {
			t.Errorf("rule %d emits a token for a space", i)
		}
	}
}
