package tokenizer

import "strings"

// cleanUps are Hugging Face's clean_up_tokenization replacements, in its
// order (applied one after another, each over the whole string).
var cleanUps = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

// CleanUpSpaces removes the spaces GPT-2's byte-level tokens leave before
// punctuation and English contractions, as Hugging Face's
// tokenizer.decode(ids) does by default (clean_up_tokenization_spaces) —
// which is what the original ClipCap's captions went through. Decode
// itself stays exact (its text re-encodes to the same ids).
func CleanUpSpaces(s string) string {
	for _, r := range cleanUps {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

// CleanUpPatterns are the strings CleanUpSpaces rewrites (each starts with
// the space it removes): text streamed token by token holds back an end
// that could still become one.
func CleanUpPatterns() []string {
	out := make([]string, len(cleanUps))
	for i, r := range cleanUps {
		out[i] = r[0]
	}
	return out
}
