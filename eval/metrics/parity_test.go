package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Expected values come from testdata/gen_parity.py, which runs pycocoevalcap
// itself (with the Stanford CoreNLP 3.4.1 tokenizer) on the same inputs.

const parityTol = 1e-9

type parityExpected struct {
	ImageIDs       []ImageID                    `json:"image_ids"`
	TokenizedRefs  [][]string                   `json:"tokenized_refs"`
	TokenizedCands []string                     `json:"tokenized_cands"`
	Corpus         map[string]float64           `json:"corpus"`
	PerImage       []map[string]json.RawMessage `json:"per_image"`
}

func loadExpected(t *testing.T, name string) parityExpected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "parity_"+name+"_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e parityExpected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func perImageValue(t *testing.T, m map[string]json.RawMessage, key string) float64 {
	t.Helper()
	var v float64
	if err := json.Unmarshal(m[key], &v); err != nil {
		t.Fatalf("expected %s: %v", key, err)
	}
	return v
}

func checkReport(t *testing.T, e parityExpected, rep *Report) {
	t.Helper()
	names := []string{Bleu1, Bleu2, Bleu3, Bleu4, RougeL, CIDEr}
	for _, k := range names {
		if d := math.Abs(rep.Corpus[k] - e.Corpus[k]); !(d <= parityTol) {
			t.Errorf("corpus %s = %.17g, toolkit %.17g (diff %g)", k, rep.Corpus[k], e.Corpus[k], d)
		}
	}
	if len(rep.Corpus) != len(names) {
		t.Errorf("corpus keys %v, want exactly %v (no METEOR/SPICE without jars)", rep.Corpus, names)
	}
	if len(rep.Images) != len(e.PerImage) {
		t.Fatalf("%d images scored, toolkit %d", len(rep.Images), len(e.PerImage))
	}
	bad := 0
	for i, want := range e.PerImage {
		got := rep.Images[i]
		var wantID ImageID
		if err := json.Unmarshal(want["image_id"], &wantID); err != nil {
			t.Fatal(err)
		}
		if got.ImageID != wantID {
			t.Fatalf("image %d is %v, toolkit order has %v", i, got.ImageID, wantID)
		}
		for _, k := range names {
			w := perImageValue(t, want, k)
			if d := math.Abs(got.Scores[k] - w); !(d <= parityTol) {
				if bad++; bad <= 10 {
					t.Errorf("image %v %s = %.17g, toolkit %.17g", got.ImageID, k, got.Scores[k], w)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d per-image values differ", bad)
	}
}

func TestParityEndToEnd(t *testing.T) {
	for _, name := range []string{"main", "varied"} {
		t.Run(name, func(t *testing.T) {
			e := loadExpected(t, name)
			res, err := LoadResults(filepath.Join("testdata", "parity_"+name+"_results.json"))
			if err != nil {
				t.Fatal(err)
			}
			ann, err := LoadAnnotations(filepath.Join("testdata", "parity_"+name+"_annotations.json"))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Score(res, ann, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, e, rep)
		})
	}
}

// TestParityTokenized feeds the toolkit's own tokens, isolating the metrics
// from the tokenizer.
func TestParityTokenized(t *testing.T) {
	for _, name := range []string{"main", "varied"} {
		t.Run(name, func(t *testing.T) {
			e := loadExpected(t, name)
			rep, err := ScoreTokenized(e.ImageIDs, e.TokenizedCands, e.TokenizedRefs, Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, e, rep)
		})
	}
}

// TestParityTokens checks our tokenization of the parity inputs against the
// toolkit's, caption by caption.
func TestParityTokens(t *testing.T) {
	for _, name := range []string{"main", "varied"} {
		e := loadExpected(t, name)
		res, _ := LoadResults(filepath.Join("testdata", "parity_"+name+"_results.json"))
		ann, _ := LoadAnnotations(filepath.Join("testdata", "parity_"+name+"_annotations.json"))
		ids, refs, err := groupRefs(ann)
		if err != nil {
			t.Fatal(err)
		}
		cands, err := matchResults(ids, res)
		if err != nil {
			t.Fatal(err)
		}
		got := Tokenize(cands)
		for i := range got {
			if got[i] != e.TokenizedCands[i] {
				t.Errorf("%s: candidate %v: %q, toolkit %q (raw %q)", name, ids[i], got[i], e.TokenizedCands[i], cands[i])
			}
		}
		var flat, want []string
		for i := range refs {
			flat = append(flat, refs[i]...)
			want = append(want, e.TokenizedRefs[i]...)
		}
		gotRefs := Tokenize(flat)
		for i := range gotRefs {
			if gotRefs[i] != want[i] {
				t.Errorf("%s: reference %d: %q, toolkit %q (raw %q)", name, i, gotRefs[i], want[i], flat[i])
			}
		}
	}
}

func TestTokenizerCases(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "tokenizer_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Captions  []string `json:"captions"`
		Tokenized []string `json:"tokenized"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Captions) < 1000 || len(c.Captions) != len(c.Tokenized) {
		t.Fatalf("tokenizer cases: %d captions, %d tokenized", len(c.Captions), len(c.Tokenized))
	}
	got := Tokenize(c.Captions)
	bad := 0
	for i := range got {
		if got[i] != c.Tokenized[i] {
			if bad++; bad <= 20 {
				t.Errorf("caption %d %q: got %q, toolkit %q", i, c.Captions[i], got[i], c.Tokenized[i])
			}
		}
	}
}
