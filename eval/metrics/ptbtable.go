package metrics

import (
	"regexp"
	"strings"
	"sync"
)

// Token actions: what the lexer emits for a match (the default options of
// PTBLexer: PTB3 escaping of brackets, LaTeX-style quotes, "..." and "--",
// currency and fraction normalization, spaces inside a token made
// non-breaking, soft hyphens dropped).

func plain(u []uint16) (string, bool, int) { return ustr(u), true, len(u) }

func skip(u []uint16) (string, bool, int) { return "", false, len(u) }

func constant(s string) action {
	return func(u []uint16) (string, bool, int) { return s, true, len(u) }
}

// pushback emits the match minus its last n units, which are lexed again.
func pushback(n int) action {
	return func(u []uint16) (string, bool, int) { return ustr(u[:len(u)-n]), true, len(u) - n }
}

// periodAgain emits the whole abbreviation and lexes its final period again
// as a sentence end, as PTBLexer does for "Corp." at a sentence end.
func periodAgain(u []uint16) (string, bool, int) { return ustr(u), true, len(u) - 1 }

func removeSoftHyphens(u []uint16) (string, bool, int) {
	s := ustr(u)
	if strings.ContainsRune(s, '\u00AD') {
		s = strings.ReplaceAll(s, "\u00AD", "")
		if s == "" {
			s = "-"
		}
	}
	return s, true, len(u)
}

func nbsp(u []uint16) (string, bool, int) {
	return strings.ReplaceAll(ustr(u), " ", "\u00A0"), true, len(u)
}

var ampRE = regexp.MustCompile(`(?i:&amp;)`)

func normAmp(u []uint16) (string, bool, int) {
	return ampRE.ReplaceAllLiteralString(ustr(u), "&"), true, len(u)
}

func parens(s string) string {
	return strings.NewReplacer("(", "-LRB-", ")", "-RRB-").Replace(s)
}

func phone(u []uint16) (string, bool, int) {
	return parens(strings.ReplaceAll(ustr(u), " ", "\u00A0")), true, len(u)
}

func smiley(u []uint16) (string, bool, int) { return parens(ustr(u)), true, len(u) }

var (
	quoteLeft   = strings.NewReplacer("&apos;", "`", "'", "`", "\"", "``", "&quot;", "``")
	quoteRight  = strings.NewReplacer("&apos;", "'", "'", "'", "\"", "''", "&quot;", "''")
	quoteUnicde = strings.NewReplacer(
		"\u0091", "`", "\u2018", "`", "\u201B", "`", "\u2039", "`",
		"\u0092", "'", "\u2019", "'", "\u203A", "'",
		"\u0093", "``", "\u201C", "``", "\u00AB", "``",
		"\u0094", "''", "\u201D", "''", "\u00BB", "''")
)

// quotes maps quote characters to PTB's “ ” ` ' (latexQuotes).
func quotes(left bool) action {
	return func(u []uint16) (string, bool, int) {
		s := ustr(u)
		if left {
			s = quoteLeft.Replace(s)
		} else {
			s = quoteRight.Replace(s)
		}
		return quoteUnicde.Replace(s), true, len(u)
	}
}

var currency = strings.NewReplacer("\u00A2", "cents", "\u00A3", "#", "\u0080", "$", "\u00A4", "$", "\u20A0", "$", "\u20AC", "$")

func normCurrency(u []uint16) (string, bool, int) { return currency.Replace(ustr(u)), true, len(u) }

var fractions = strings.NewReplacer("\u00BC", "1/4", "\u00BD", "1/2", "\u00BE", "3/4", "\u2153", "1/3", "\u2154", "2/3")

func normFraction(u []uint16) (string, bool, int) { return fractions.Replace(ustr(u)), true, len(u) }

func dashes(u []uint16) (string, bool, int) {
	if len(u) >= 3 && len(u) <= 4 {
		return "--", true, len(u)
	}
	return ustr(u), true, len(u)
}

// acronymAtSentenceEnd: "U.S." before "The" is both the acronym and a
// sentence end: emit "U.S." and lex the period again; a one-letter "I." is
// split into "I" and ".".
func acronymAtSentenceEnd(u []uint16) (string, bool, int) {
	if len(u) == 2 {
		return ustr(u[:1]), true, 1
	}
	return ustr(u), true, len(u) - 1
}

var (
	ptbOnce  sync.Once
	ptbLexer *lexer
)

// ptb returns the lexer, compiling its rules on first use.
func ptb() *lexer {
	ptbOnce.Do(func() { ptbLexer = newLexer(ptbRules()) })
	return ptbLexer
}

// ptbRules lists the rules in PTBLexer's order (the traditional-treebank
// lexical state, the one pycocoevalcap's options select).
func ptbRules() []*rule {
	var (
		spacenls = mSPACENL + "+"
		inSentP  = mINSENTP
	)
	return []*rule{
		newRule(`[cC]\+\+`, "", 0, plain),
		newRule(`[cCfF]#`, "", 0, plain),
		newRule(ci("cannot"), "", 0, pushback(3)),
		newRule(ci("'twas"), "", 0, pushback(3)),
		newRule(ci("'tis"), "", 0, pushback(2)),
		newRule(ciAlt("gonna", "gotta", "lemme", "gimme", "wanna"), "", 0, pushback(2)),
		newRule(mSGML, "", 0, nbsp),
		newRule(mSPMDASH, "", 0, constant("--")),
		newRule(mSPAMP, "", 0, normAmp),
		newRule(mSPPUNC, "", 0, plain),
		newRule(mWORD, mREDAUX, -1, removeSoftHyphens),
		newRule(mSWORD, mSREDAUX, -1, removeSoftHyphens),
		newRule(mWORD, "", 0, removeSoftHyphens),
		newRule(mAPOWORD, "", 0, plain),
		newRule(mAPOWORD2, `\p{L}`, 1, plain),
		newRule(mFULLURL, "", 0, plain),
		newRule(mLIKELY, "", 0, plain),
		newRule(mEMAIL, "", 0, plain),
		newRule(mTWITTER, "", 0, plain),
		newRule(mREDAUX, `[^A-Za-z]`, 1, quotes(false)),
		newRule(mSREDAUX, `[^A-Za-z]`, 1, quotes(false)),
		newRule(mDATE, "", 0, plain),
		newRule(mNUMBER, "", 0, removeSoftHyphens),
		newRule(mSUBSUP, "", 0, plain),
		newRule(mFRAC, "", 0, nbsp),
		newRule(mFRAC2, "", 0, normFraction),
		newRule(mTBSPEC, "", 0, normAmp),
		newRule(mTHING3, "", 0, plain),
		newRule(mDOLSIGN, "", 0, plain),
		newRule(mDOLSIG2, "", 0, normCurrency),
		newRule(mACRONYM, spacenls+acronymFollowers()+mSPACENL, -1, acronymAtSentenceEnd),
		newRule(mABBREV3, mSPACENL+`?\p{Nd}`, -1, plain),
		newRule(grp(ci("pt")+"[eyEY]|"+ci("co"))+`\.`, mSPACE+ciAlt("ltd", "lim"), 4, plain),
		newRule(mABBREV1, mSENTEND, -1, periodAgain),
		newRule(mABBREV1, `(?s:..)`, 2, plain),
		newRule(mABBREV1, "", 0, periodAgain),
		newRule(mABBREV2, "", 0, plain),
		newRule(mABBREV4, mSPACE, 1, plain),
		newRule(mACRO, mSPACENL, 1, plain),
		newRule(mTBSPEC2, mSPACENL, 1, plain),
		newRule(mFILE, grp(mSPACENL+`|[.?!,]`), 1, plain),
		newRule(mWORD+`\.`, inSentP, 1, removeSoftHyphens),
		newRule(mPHONE, "", 0, phone),
		newRule(mDBLQUOT, `[A-Za-z0-9$]`, 1, quotes(true)),
		newRule(mDBLQUOT, "", 0, quotes(false)),
		newRule(`\x7f`, "", 0, skip),
		newRule(mLESS, "", 0, constant("<")),
		newRule(mGREATER, "", 0, constant(">")),
		newRule(mSMILEY, `[^A-Za-z0-9]`, 1, smiley),
		newRule(mASIAN, "", 0, smiley),
		newRule(`\{`, "", 0, constant("-LCB-")),
		newRule(`\}`, "", 0, constant("-RCB-")),
		newRule(`\[`, "", 0, constant("-LSB-")),
		newRule(`\]`, "", 0, constant("-RSB-")),
		newRule(`\(`, "", 0, constant("-LRB-")),
		newRule(`\)`, "", 0, constant("-RRB-")),
		newRule(`-+`, "", 0, dashes),
		newRule(mLDOTS, "", 0, constant("...")),
		newRule(mFNMARKS, "", 0, plain),
		newRule(mASTS, "", 0, plain),
		newRule(mINSENTP, "", 0, plain),
		newRule(`[?!]+`, "", 0, plain),
		newRule(`[.\x{00A1}\x{00BF}\x{037E}\x{0589}\x{061F}\x{06D4}\x{0700}-\x{0702}\x{07FA}\x{3002}]`, "", 0, plain),
		newRule(`=`, "", 0, plain),
		newRule(`/`, "", 0, plain),
		newRule(mHTHING+`\.`, inSentP, 1, removeSoftHyphens),
		newRule(mHTHING, "", 0, removeSoftHyphens),
		newRule(mTHING+`\.`, inSentP, 1, plain),
		newRule(mTHING, "", 0, plain),
		newRule(mTHINGA+`\.`, inSentP, 1, normAmp),
		newRule(mTHINGA, "", 0, normAmp),
		newRule(`'`, `[A-Za-z][^ \t\n\r\x{00A0}]`, 2, quotes(true)),
		newRule(mREDAUX, "", 0, quotes(false)),
		newRule(mSREDAUX, "", 0, quotes(false)),
		newRule(mQUOTES, "", 0, quotes(false)),
		newRule(`<<|>>`, "", 0, plain),
		newRule(mMISC, "", 0, plain),
		newRule(`\x00|`+mSPACE+`+|[\x{200B}\x{200E}-\x{200F}\x{FEFF}]`, "", 0, skip),
		newRule(mNEWLINE, "", 0, constant(newlineToken)),
		newRule(ci("&nbsp;"), "", 0, skip),
		newRule(`(?s:.)`, "", 0, skip), // untokenizable: PTBLexer deletes it (with a warning)
	}
}
