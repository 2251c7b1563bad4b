package metrics

import (
	"regexp"
	"strings"
)

// This file restates, as Go regular expressions, the token rules of the
// Stanford PTBLexer that pycocoevalcap runs (CoreNLP 3.4.1, default options
// plus tokenizeNLs). The rule order matters: like JFlex, the lexer takes the
// longest match and breaks ties by the earlier rule.
//
// Two JFlex details shape the spelling below:
//   - the lexer is %caseless: literal letters match either case, but
//     character classes do not. ci() spells a literal that way (explicitly,
//     because Go's (?i) would also fold classes and Unicode look-alikes such
//     as the Kelvin sign).
//   - JFlex 1.5 reads UTF-16 code units; see lexer.go for how surrogates are
//     represented.

// ci turns an ASCII literal into a pattern matching it in either case.
func ci(lit string) string {
	var b strings.Builder
	for _, r := range lit {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteString("[" + string(r) + string(r-32) + "]")
		case r >= 'A' && r <= 'Z':
			b.WriteString("[" + string(r+32) + string(r) + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

// alt joins caseless literals into one alternation.
func ciAlt(lits ...string) string {
	parts := make([]string, len(lits))
	for i, l := range lits {
		parts[i] = ci(l)
	}
	return "(?:" + strings.Join(parts, "|") + ")"
}

func grp(s string) string { return "(?:" + s + ")" }

// Macros, in the order the lexer definition introduces them.
var (
	mSGML    = `<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\-]*|[A-Za-z][A-Za-z0-9_:.\-]*[ ]*=[ ]*(?:'[^']*'|"[^"]*")))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>`
	mSPMDASH = grp("&" + ciAlt("MD", "mdash", "ndash") + ";|[\\x{0096}\\x{0097}\\x{2013}\\x{2014}\\x{2015}]")
	mSPAMP   = ci("&amp;")
	mSPPUNC  = "&" + grp(ciAlt("HT", "TL", "UR", "LR", "QC", "QL", "QR", "odq", "cdq")+"|#[0-9]+") + ";"
	mSPLET   = "&[aeiouAEIOU]" + ciAlt("acute", "grave", "uml") + ";"
	mSPACE   = `[ \t\x{00A0}\x{2000}-\x{200A}\x{3000}]`
	mNEWLINE = `(?:\r|\r?\n|\x{2028}|\x{2029}|\x{000B}|\x{000C}|\x{0085})`
	mSPACENL = grp(mSPACE + "|" + mNEWLINE)
	mSENTEND = mSPACENL + grp(mSPACENL+`|\p{Lu}|`+mSGML)
	mDIGIT   = `[\p{Nd}\x{07C0}-\x{07C9}]`
	mDATE    = mDIGIT + `{1,2}[\-/]` + mDIGIT + `{1,2}[\-/]` + mDIGIT + `{2,4}`
	mNUM     = grp(mDIGIT + "+|" + mDIGIT + `*(?:[.:,\x{00AD}\x{066B}\x{066C}]` + mDIGIT + "+)+")
	mNUMBER  = `[\-+]?` + mNUM
	mSUBSUP  = `[\x{207A}\x{207B}\x{208A}\x{208B}]?(?:[\x{2070}\x{00B9}\x{00B2}\x{00B3}\x{2074}-\x{2079}]+|[\x{2080}-\x{2089}]+)`
	mFRAC    = grp(mDIGIT+`{1,4}[\- \x{00A0}]`) + "?" + mDIGIT + `{1,4}(?:\\?/|\x{2044})` + mDIGIT + `{1,4}`
	mFRAC2   = `[\x{00BC}\x{00BD}\x{00BE}\x{2153}-\x{215E}]`
	mDOLSIGN = `(?:[A-Z]*\$|#)`
	mDOLSIG2 = `[\x{00A2}\x{00A3}\x{00A4}\x{00A5}\x{0080}\x{20A0}\x{20AC}\x{060B}\x{0E3F}\x{20A4}\x{FFE0}\x{FFE1}\x{FFE5}\x{FFE6}]`
	mLETTER  = grp(`\p{L}|` + mSPLET + `|[\x{00AD}\x{0237}-\x{024F}\x{02C2}-\x{02C5}\x{02D2}-\x{02DF}\x{02E5}-\x{02FF}\x{0300}-\x{036F}\x{0370}-\x{037D}\x{0384}\x{0385}\x{03CF}\x{03F6}\x{03FC}-\x{03FF}\x{0483}-\x{0487}\x{04CF}\x{04F6}-\x{04FF}\x{0510}-\x{0525}\x{055A}-\x{055F}\x{0591}-\x{05BD}\x{05BF}\x{05C1}\x{05C2}\x{05C4}\x{05C5}\x{05C7}\x{0615}-\x{061A}\x{063B}-\x{063F}\x{064B}-\x{065E}\x{0670}\x{06D6}-\x{06EF}\x{06FA}-\x{06FF}\x{070F}\x{0711}\x{0730}-\x{074F}\x{0750}-\x{077F}\x{07A6}-\x{07B1}\x{07CA}-\x{07F5}\x{07FA}\x{0900}-\x{0903}\x{093C}\x{093E}-\x{094E}\x{0951}-\x{0955}\x{0962}-\x{0963}\x{0981}-\x{0983}\x{09BC}-\x{09C4}\x{09C7}\x{09C8}\x{09CB}-\x{09CD}\x{09D7}\x{09E2}\x{09E3}\x{0A01}-\x{0A03}\x{0A3C}\x{0A3E}-\x{0A4F}\x{0A81}-\x{0A83}\x{0ABC}-\x{0ACF}\x{0B82}\x{0BBE}-\x{0BC2}\x{0BC6}-\x{0BC8}\x{0BCA}-\x{0BCD}\x{0C01}-\x{0C03}\x{0C3E}-\x{0C56}\x{0D3E}-\x{0D44}\x{0D46}-\x{0D48}\x{0E30}-\x{0E3A}\x{0E47}-\x{0E4E}\x{0EB1}-\x{0EBC}\x{0EC8}-\x{0ECD}]`)
	mLD      = grp(mLETTER + "|" + mDIGIT)
	mWORD    = mLETTER + mLD + `*(?:[.!?]` + mLETTER + mLD + `*)*`
	mFILEEXT = ciAlt("bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h", "htm", "html", "jar", "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png", "ppt", "ps", "py", "sql", "tar", "txt", "wav", "x", "xml", "zip")
	mFILE    = mLD + `+(?:[.]` + mLD + `+)*(?:[.]` + mFILEEXT + `)`
	mAPOS    = grp(`['\x{0092}\x{2019}]|` + ci("&apos;"))
	mAPOSETC = grp(mAPOS + "|[`\\x{0091}\\x{2018}\\x{201B}]")
	mHYPHEN  = `[\-_\x{058A}\x{2010}\x{2011}]`
	mLDc     = `[\p{L}\p{Nd}]`
	mTHINGP  = grp("[dDoOlL]"+mAPOSETC+mLDc) + "?" + mLDc + "+"
	mTHING   = mTHINGP + grp(mHYPHEN+mTHINGP) + "*"
	mTHINGA  = `[A-Z]+(?:(?:[+&]|` + mSPAMP + `)[A-Z]+)+`
	mTHING3  = `[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}`
	mACRO    = grp(`[A-Za-z](?:\.[A-Za-z])*|` + grp(ciAlt("Canada", "Sino", "Korean", "EU", "Japan", "non")+ci("-U.S")) + "|" + ci("U.S.-") + grp(ci("U.K")+"|"+ci("U.S.S.R")))
	mACRO2   = grp(`[A-Za-z](?:\.[A-Za-z])+|` + grp(ciAlt("Canada", "Sino", "Korean", "EU", "Japan", "non")+ci("-U.S")) + "|" + ci("U.S.-") + grp(ci("U.K")+"|"+ci("U.S.S.R")))
	mHTHING  = `[A-Za-z0-9][A-Za-z0-9.,\x{00AD}]*(?:-(?:[A-Za-z0-9\x{00AD}]+|` + mACRO2 + `\.))+`
	mREDAUX  = mAPOS + grp("[msdMSD]|"+ciAlt("re", "ve", "ll"))
	mSWORD   = `[A-Za-z\x{00AD}]*[A-MO-Za-mo-z]\x{00AD}*`
	mSREDAUX = ci("n") + mAPOSETC + ci("t")
	mAPOWORD = grp(mAPOS + ci("n") + mAPOS + "?|" +
		"[lLdDjJ]" + mAPOS + "|" +
		ci("Dunkin") + mAPOS + "|" +
		ci("somethin") + mAPOS + "|" +
		ci("ol") + mAPOS + "|" +
		mAPOS + ci("em") + "|" +
		"[A-HJ-XZn]" + mAPOSETC + `\p{L}{2}\p{L}*|` +
		mAPOS + "[2-9]0" + ci("s") + "|" +
		mAPOS + ci("til") + ci("l") + "?|" +
		`\p{L}\p{L}*[aeiouyAEIOUY]` + mAPOSETC + `[aeiouA-Z]\p{L}*|` +
		mAPOS + ci("cause") + "|" +
		ci("cont'd") + `\.?|` +
		ciAlt("'twas", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l") + "|" +
		ci("O") + mAPOSETC + ci("o"))
	mAPOWORD2 = ci("y") + mAPOS
	mFULLURL  = ci("http") + ci("s") + `?://[^ \t\n\f\r"<>|(){}]+[^ \t\n\f\r"<>|.!?(){},\-]`
	mLIKELY   = `(?:(?:` + ci("www.") + `(?:[^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r"` + "`" + `'<>|.!?(){},-_$]+\.)+` + ciAlt("com", "net", "org", "edu") + `))(?:/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},\-])?`
	mEMAIL    = `(?:` + ci("&lt;") + `|<)?[a-zA-Z0-9][^ \t\n\f\r"<>|()\x{00A0}{}]*@(?:[^ \t\n\f\r"<>|(){}.\x{00A0}]+\.)*(?:[^ \t\n\f\r"<>|(){}.\x{00A0}]+)(?:` + ci("&gt;") + `|>)?`
	mTWITTER  = `(?:@[a-zA-Z_][a-zA-Z_0-9]*|#` + mLETTER + `+)`
	mABMONTH  = ciAlt("Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec")
	mABDAYS   = ciAlt("Mon", "Tue", "Tues", "Wed", "Thu", "Thurs", "Fri")
	mABSTATE  = grp(ciAlt("Ala", "Ariz") + "|[A]" + ci("z") + "|[A]" + ci("rk") + "|" + ciAlt("Calif", "Colo", "Conn", "Ct", "Dak") + "|[D]" + ci("el") + "|" + ciAlt("Fla", "Ga") + "|[I]" + ci("ll") + "|" + ciAlt("Ind", "Kan") + ci("s") + "?|" + ci("Ky") + "|[L]" + ci("a") + "|[M]" + ci("ass") + "|" + ciAlt("Md", "Mich", "Minn") + "|[M]" + ci("iss") + "|" + ciAlt("Mo", "Mont", "Neb", "Nev", "Okla") + "|[O]" + ci("re") + "|[P]" + ci("a") + "|" + ciAlt("Penn", "Tenn") + "|[T]" + ci("ex") + "|" + ciAlt("Va", "Vt") + "|[W]" + ci("ash") + "|" + ci("Wisc") + "?|" + ci("Wyo"))
	mABCOMP   = grp(ciAlt("Inc") + "|" + ci("Co") + ci("s") + "?|" + ci("Corp") + "|" + ci("P") + ci("p") + "?" + ci("t") + "[ye]" + ci("s") + "?|" + ciAlt("Ltd", "Plc", "Rt", "Bancorp", "Bhd", "Assn", "Univ", "Intl", "Sys"))
	mABNUM    = ciAlt("tel", "est", "ext", "sq")
	mABPTIT   = grp(ciAlt("Jr", "Sr", "Bros") + "|" + ciAlt("Ed", "Ph") + ci(".D") + "|" + ciAlt("Blvd", "Rd", "Esq"))
	mABBREV1  = grp(mABMONTH+"|"+mABDAYS+"|"+mABSTATE+"|"+mABCOMP+"|"+mABNUM+"|"+mABPTIT+"|"+ciAlt("etc", "al", "seq", "Bldg")) + `\.`
	mABTITLE  = grp(ciAlt("Mr", "Mrs", "Ms") + "|[M]" + ci("iss") + "|" + ci("Dr") + ci("s") + "?|" + ci("Prof") + ci("s") + "?|" + ci("Sen") + ci("s") + "?|" + ci("Rep") + ci("s") + "?|" + ci("Atty") + ci("s") + "?|" + ciAlt("Lt", "Col", "Gen", "Messrs") + "|" + ci("Gov") + ci("s") + "?|" + ciAlt("Adm", "Rev", "Maj", "Sgt", "Cpl", "Pvt", "Capt") + "|" + ci("St") + ci("e") + "?|" + ciAlt("Ave", "Pres", "Lieut", "Hon", "Brig") + "|" + ci("C") + ci("o") + "?" + ci("mdr") + "|" + ciAlt("Pfc", "Spc") + "|" + ci("Supt") + ci("s") + "?|" + ciAlt("Det", "Mt", "Ft", "Adj", "Adv", "Asst", "Assoc", "Ens", "Insp", "Mlle", "Mme", "Msgr", "Sfc"))
	mABCOMP2  = grp(ciAlt("Invt", "Elec", "Natl") + "|" + ci("M") + "[ft]" + ci("g") + "|" + ci("Dept"))
	mABBREV4  = grp(mABTITLE + "|" + ciAlt("vs", "Alex", "Wm", "Jos", "Cie", "a.k.a", "cf", "TREAS", "Ph") + "|" + mACRO + "|" + mABCOMP2)
	mABBREV2  = mABBREV4 + `\.`
	mACRONYM  = mACRO + `\.`
	mABBREV3  = grp(ciAlt("ca", "fig")+"|"+ci("fig")+ci("s")+"?|"+ciAlt("prop")+"|"+ci("no")+ci("s")+"?|"+ciAlt("art", "bldg", "pp", "op")) + `\.`
	mPHONE    = `(?:(?:\([0-9]{2,3}\)[ \x{00A0}]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \x{00A0}])?[0-9]{2,4}[\- \x{00A0}])[0-9]{3,4}[\- \x{00A0}]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5})`
	mLESS     = `(?:<|` + ci("&lt;") + `)`
	mGREATER  = `(?:>|` + ci("&gt;") + `)`
	mLDOTS    = `(?:\.{3,5}|(?:\.[ \x{00A0}]){2,4}\.|[\x{0085}\x{2026}])`
	mFNMARKS  = `(?:@+|#+|_+)`
	mASTS     = `(?:\*+|(?:\\\*){1,3})`
	mINSENTP  = `[,;:\x{3001}]`
	mQUOTES   = grp(mAPOS + `|''|[` + "`" + `\x{2018}\x{2019}\x{201A}\x{201B}\x{201C}\x{201D}\x{0091}\x{0092}\x{0093}\x{0094}\x{201E}\x{201F}\x{2039}\x{203A}\x{00AB}\x{00BB}]{1,2}`)
	mDBLQUOT  = `(?:"|` + ci("&quot;") + `)`
	mTBSPEC   = grp("-" + ciAlt("RRB", "LRB", "RCB", "LCB", "RSB", "LSB") + "-|" + ciAlt("C.D.s", "pro-", "anti-") + "|" + ci("S") + grp("&|"+ci("&amp;")) + ci("P-500") + "|" + ci("S") + grp("&|"+ci("&amp;")) + ci("Ls") + "|" + ci("Cap") + mAPOS + ci("n") + "|" + ci("c") + mAPOS + ci("est"))
	mTBSPEC2  = mAPOS + `[0-9][0-9]`
	mSMILEY   = `[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]`
	mASIAN    = `(?:[\^x=~<>]\.\[\^` + ci("x") + `=~<>\]|[\-\^x=~<>']_[\-\^x=~<>']|\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'` + "`" + `]\))`
	mMISC     = `[+%&~\^|\\\x{00A6}\x{00A7}\x{00A8}\x{00A9}\x{00AC}\x{00AE}\x{00AF}\x{00B0}-\x{00B3}\x{00B4}-\x{00BA}\x{00D7}\x{00F7}\x{0387}\x{05BE}\x{05C0}\x{05C3}\x{05C6}\x{05F3}\x{05F4}\x{0600}-\x{0603}\x{0606}-\x{060A}\x{060C}\x{0614}\x{061B}\x{061E}\x{066A}\x{066D}\x{0703}-\x{070D}\x{07F6}\x{07F7}\x{07F8}\x{0964}\x{0965}\x{0E4F}\x{1FBD}\x{2016}\x{2017}\x{2020}-\x{2023}\x{2030}-\x{2038}\x{203B}\x{203E}-\x{2042}\x{2044}\x{207A}-\x{207F}\x{208A}-\x{208E}\x{2100}-\x{214F}\x{2190}-\x{21FF}\x{2200}-\x{2BFF}\x{3012}\x{30FB}\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF20}\x{FF3B}-\x{FF40}\x{FF5B}-\x{FF65}]`
)

// acronymFollowers are the words after which an acronym's period is also a
// sentence end. [A]bout in the lexer: the first letter is a class (case
// sensitive), the rest a caseless literal.
func acronymFollowers() string {
	words := []string{"About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier", "He", "Her", "Here", "However", "If", "In", "It", "Last", "Many", "More", "Mr.", "Ms.", "Now", "Once", "One", "Other", "Our", "She", "Since", "So", "Some", "Such", "That", "The", "Their", "Then", "There", "These", "They", "This", "We", "When", "While", "What", "Yet", "You"}
	parts := make([]string, 0, len(words)+1)
	for _, w := range words {
		parts = append(parts, "["+w[:1]+"]"+ci(w[1:]))
	}
	parts = append(parts, mSGML)
	return "(?:" + strings.Join(parts, "|") + ")"
}
