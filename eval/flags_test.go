package eval

import (
	"strings"
	"testing"

	"github.com/clipcap/clipcap/eval/metrics"
	"github.com/clipcap/clipcap/internal/flagtest"
)

func TestRegisterFlags(t *testing.T) {
	var o Options
	fs := flagtest.Parse(t, o.RegisterFlags)
	if o.Batch != 16 || o.Limit != 0 || o.Verify {
		t.Errorf("defaults %+v", o)
	}
	err := fs.Parse(strings.Fields("--model m --features st --verify --split test --out o --batch 4 --limit 9 --dataset nocaps --precision bf16 --clip c.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Model != "m" || o.Features != "st" || !o.Verify || o.Split != "test" || o.Out != "o" || o.Batch != 4 || o.Limit != 9 ||
		o.Dataset != "nocaps" || o.Precision != "bf16" || o.CLIP != "c.pt" {
		t.Errorf("options %+v", o)
	}
}

func TestWriteScores(t *testing.T) {
	s := &Summary{Results: make([]metrics.Caption, 3), Report: &metrics.Report{Corpus: map[string]float64{"CIDEr": 1.25, "Bleu_4": 0.5, "Bleu_1": 0.9}}}
	var b strings.Builder
	if err := s.WriteScores(&b, "out"); err != nil {
		t.Fatal(err)
	}
	if want := "Bleu_4   0.5000\nCIDEr    1.2500\n3 images; report: out/report.md\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
