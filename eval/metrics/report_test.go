package metrics

import (
	"bytes"
	"math"
	"testing"
)

func TestReportWriters(t *testing.T) {
	r := &Report{Corpus: map[string]float64{CIDEr: 1.25, Bleu1: 0.5, Spice: math.NaN()}, Images: make([]ImageScores, 3)}
	var js, txt bytes.Buffer
	if err := r.WriteCorpusJSON(&js); err != nil {
		t.Fatal(err)
	}
	if got, want := js.String(), `{"Bleu_1": 0.5, "CIDEr": 1.25, "SPICE": null}`+"\n"; got != want {
		t.Fatalf("JSON %q, want %q (toolkit order, NaN as null, absent metrics left out)", got, want)
	}
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if got, want := txt.String(), "3 images\nBleu_1   0.5000\nCIDEr    1.2500\nSPICE    NaN\n"; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
}
