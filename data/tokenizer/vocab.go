package tokenizer

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// parseVocab reads vocab.json, a flat JSON object of token -> id. GPT-2's
// 50k entries take encoding/json about 20 ms, half of loading the
// tokenizer and a noticeable part of `clipcap tokenize`'s start-up; the
// scanner here takes a fraction of that. It handles the common shape
// (escape-free keys, plain integers) and hands anything else to
// encoding/json, which also words the errors, so the result is always what
// encoding/json would give.
func parseVocab(data []byte) (map[string]int, error) {
	if v, ok := scanVocab(data); ok {
		return v, nil
	}
	var v map[string]int
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// scanVocab parses data when it is a flat object of string keys and
// integer values of at most 18 digits; ok is false for anything else.
func scanVocab(data []byte) (vocab map[string]int, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	vocab = make(map[string]int, bytes.Count(data, []byte{':'}))
	if i = skipSpace(data, i+1); i < len(data) && data[i] == '}' {
		return vocab, skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false
		}
		j, escaped := i+1, false
		for j < len(data) && data[j] != '"' {
			if data[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j >= len(data) {
			return nil, false
		}
		key, ok := unquoteKey(data[i+1:j], escaped)
		if !ok && json.Unmarshal(data[i:j+1], &key) != nil {
			return nil, false
		}
		if i = skipSpace(data, j+1); i >= len(data) || data[i] != ':' {
			return nil, false
		}
		i = skipSpace(data, i+1)
		n, end, ok := scanInt(data, i)
		if !ok {
			return nil, false
		}
		vocab[key] = n // a repeated key keeps its last value, as in encoding/json
		if i = skipSpace(data, end); i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return vocab, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

// unquoteKey decodes the body of a JSON string: raw UTF-8 with the simple
// escapes and \u escapes outside the surrogate range (GPT-2's vocab
// spells every non-ASCII token so). ok is false for anything else (control
// characters, surrogate pairs, invalid UTF-8), which encoding/json decodes.
func unquoteKey(s []byte, escaped bool) (string, bool) {
	if !escaped {
		for _, c := range s {
			if c < 0x20 {
				return "", false
			}
		}
		return string(s), utf8.Valid(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			i++
			continue
		case i+1 >= len(s):
			return "", false
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok || utf16.IsSurrogate(r) {
				return "", false
			}
			b = utf8.AppendRune(b, r)
			i += 4
		default:
			return "", false
		}
		i += 2
	}
	// Escapes add whole, valid runes, so this checks the raw bytes.
	return string(b), utf8.Valid(b)
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// scanInt reads a JSON integer (no fraction or exponent, no leading zeros)
// of at most 18 digits at data[i:].
func scanInt(data []byte, i int) (n, end int, ok bool) {
	neg := i < len(data) && data[i] == '-'
	if neg {
		i++
	}
	start := i
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		n = n*10 + int(data[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (digits > 1 && data[start] == '0') {
		return 0, 0, false
	}
	if i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E') {
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
