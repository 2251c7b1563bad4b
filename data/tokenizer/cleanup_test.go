package tokenizer

import "testing"

// The cases Hugging Face's clean_up_tokenization handles, and what it leaves.
func TestCleanUpSpaces(t *testing.T) {
	for in, want := range map[string]string{
		" a dog on a skateboard .":                 " a dog on a skateboard.",
		"is it ? yes ! one , two":                  "is it? yes! one, two",
		"the dog ' s ball":                         "the dog's ball",
		"it don't fit , I 'm sure":                 "it don't fit, I'm sure",
		"he does n't , she 's , we 've , they 're": "he doesn't, she's, we've, they're",
		"a man 's hat .":                           "a man's hat.",
		"1 . 5 m":                                  "1. 5 m",
		"  . .":                                    " ..", // one pass per rule, as str.replace
		"no change here: (a) - b; c":               "no change here: (a) - b; c",
		"a 'quoted' word":                          "a 'quoted' word",
		"":                                         "",
	} {
		if got := CleanUpSpaces(in); got != want {
			t.Errorf("CleanUpSpaces(%q) = %q, want %q", in, got, want)
		}
	}
}
