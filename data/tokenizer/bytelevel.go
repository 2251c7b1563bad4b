package tokenizer

import (
	"unicode/utf8"

	"github.com/sugarme/tokenizer/pretokenizer"
)

// GPT-2 never feeds raw bytes to BPE: each byte is first mapped to one
// printable unicode character (bytes_to_unicode in OpenAI's encoder.py), so
// that vocab.json and merges.txt are plain text with no whitespace or control
// characters inside tokens. A space becomes 'Ġ' (U+0120), a newline 'Ċ'.
//
// sugarme/tokenizer's byte-level pre-tokenizer builds the same table; we take
// it from there and flatten it into arrays, because encoding looks up every
// byte of the input.
var (
	// byteRune[b] is the character byte b is written as in the vocab.
	byteRune [256]rune
	// runeByte maps those characters back; runeByteOK marks valid entries.
	// All 256 characters are below U+0144, so a small array covers them.
	runeByte   [0x200]byte
	runeByteOK [0x200]bool
)

func init() {
	for b, s := range pretokenizer.GenerateBytesChar() {
		r, _ := utf8.DecodeRuneInString(s)
		byteRune[b] = r
		runeByte[r] = b
		runeByteOK[r] = true
	}
}

// byteLevel writes raw bytes as their vocab characters.
func byteLevel(raw string) string {
	out := make([]rune, len(raw))
	for i := 0; i < len(raw); i++ {
		out[i] = byteRune[raw[i]]
	}
	return string(out)
}

// rawBytes undoes byteLevel. ok is false when tok holds a character outside
// the byte-level alphabet (a vocab entry no GPT-2 encoding can produce).
func rawBytes(tok string) (raw string, ok bool) {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		if r < 0 || int(r) >= len(runeByteOK) || !runeByteOK[r] {
			return "", false
		}
		out = append(out, runeByte[r])
	}
	return string(out), true
}

// gpt2ByteOrder returns the 256 bytes in the order GPT-2 gives them vocab
// ids 0..255: printable bytes first ('!'..'~', '¡'..'¬', '®'..'ÿ'), then the
// remaining ones in byte order. NewByteLevel uses it so a toy vocab shares
// GPT-2's ids for single bytes ("." = 13, " " = 220, "\n" = 198).
func gpt2ByteOrder() []byte {
	order := make([]byte, 0, 256)
	var printable [256]bool
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			printable[b] = true
			order = append(order, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !printable[b] {
			order = append(order, byte(b))
		}
	}
	return order
}
