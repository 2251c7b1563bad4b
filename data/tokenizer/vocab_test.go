package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var vocabCases = []string{
	`{"a": 0, "b":1,"ab" : 2}`,
	" \n{\"\u0120the\": 262,\r\n\t\"!\": 0}\n",
	`{}`, ` { } `,
	`{"a": 1, "a": 2}`,
	`{"q\"uote": 1, "b": 2}`, `{"\u0041": 1}`, `{"a": 0, "\"": 1, "\\": 2, "\u0120x": 3, "z": 4}`, `{"a\": 1}`, `{"\x": 1}`, `{"\ud83d\ude00": 1, "\ud800": 2, "\u00E9\/\b\f\n\r\t": 3}`, `{"\u12": 1}`, `{"\u12g4": 1}`, `{"tab	x": 1}`, "{\"bad\xffutf8\": 1}",
	`{"a": -0, "b": -7}`, `{"a": 01}`, `{"a": 1.0}`, `{"a": 1e3}`, `{"a": 1234567890123456789012}`,
	`{"a": "1"}`, `{"a": null}`, `null`, `[]`, `{"a": 1,}`, `{"a" 1}`, `{"a": 1} x`, `{"a": 1`, `{"a": }`, `{a: 1}`, ``,
}

// parseVocab gives exactly what encoding/json gives: the same map, or an
// error where it has one.
func checkVocab(t *testing.T, data []byte) {
	got, err := parseVocab(data)
	var want map[string]int
	wantErr := json.Unmarshal(data, &want)
	if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Errorf("%q: got %v (%v), encoding/json %v (%v)", data, got, err, want, wantErr)
	}
}

func TestParseVocabIsEncodingJSON(t *testing.T) {
	for _, c := range vocabCases {
		checkVocab(t, []byte(c))
	}
	// The fast path takes the common shape itself.
	if v, ok := scanVocab([]byte(vocabCases[1])); !ok || v["\u0120the"] != 262 {
		t.Errorf("scanVocab(%q) = %v, %v", vocabCases[1], v, ok)
	}
}

// GPT-2's own vocab.json takes the fast path (its few escaped keys
// included) and reads as encoding/json reads it.
func TestParseGPT2Vocab(t *testing.T) {
	gpt2(t)
	data, err := os.ReadFile(filepath.Join(DefaultDir(), VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scanVocab(data); !ok {
		t.Error("GPT-2's vocab.json fell back to encoding/json")
	}
	checkVocab(t, data)
}

func FuzzParseVocab(f *testing.F) {
	for _, c := range vocabCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkVocab(t, data) })
}
