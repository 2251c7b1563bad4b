package sample

import (
	"math"
	"testing"

	"github.com/sugarme/gotch/ts"
)

func logits(t *testing.T, rows [][]float32) *ts.Tensor {
	t.Helper()
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	x, err := ts.NewTensorFromData(flat, []int64{int64(len(rows)), int64(len(rows[0]))})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestGreedyIsArgmax(t *testing.T) {
	p := New(Config{Greedy: true, Temperature: 0.5}, 2)
	x := logits(t, [][]float32{{0, 3, 1}, {5, -1, 4.9}})
	got, err := p.Next(x, []int{0, 1})
	if err != nil || got[0] != 1 || got[1] != 0 {
		t.Fatalf("greedy: %v %v", got, err)
	}
}

func TestScaleDividesByTemperature(t *testing.T) {
	p := New(Config{Temperature: 2}, 1)
	s, err := p.Scale(logits(t, [][]float32{{2, -4}}))
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Float64Values(); v[0] != 1 || v[1] != -2 {
		t.Fatalf("scaled %v", v)
	}
}

// Sampling frequencies follow softmax(logits) after the filters; top-k 1
// and a tiny top-p reduce to the argmax; a fixed seed repeats its draws.
func TestSamplingDistributionAndFilters(t *testing.T) {
	row := []float32{float32(math.Log(0.5)), float32(math.Log(0.3)), float32(math.Log(0.2))}
	const n = 20000
	count := func(cfg Config) [3]int {
		p := New(cfg, 1)
		x := logits(t, [][]float32{row})
		defer x.MustDrop()
		var c [3]int
		for i := 0; i < n; i++ {
			tok, err := p.Next(x, []int{0})
			if err != nil {
				t.Fatal(err)
			}
			c[tok[0]]++
		}
		return c
	}
	c := count(Config{Seed: 7})
	for i, want := range []float64{0.5, 0.3, 0.2} {
		if got := float64(c[i]) / n; math.Abs(got-want) > 0.02 {
			t.Errorf("token %d drawn %.3f of the time, want %.2f", i, got, want)
		}
	}
	if c := count(Config{TopK: 2, Seed: 7}); c[2] != 0 || math.Abs(float64(c[0])/n-0.625) > 0.02 {
		t.Errorf("top-k 2: %v, want token 2 never and token 0 at 5/8", c)
	}
	if c := count(Config{TopP: 0.75, Seed: 7}); c[2] != 0 {
		t.Errorf("top-p 0.75 keeps {0, 1} (mass 0.8): %v", c)
	}
	if c := count(Config{TopP: 0.1, Seed: 7}); c[0] != n {
		t.Errorf("top-p 0.1 keeps only the argmax: %v", c)
	}
	if a, b := count(Config{Seed: 3}), count(Config{Seed: 3}); a != b {
		t.Errorf("same seed, different draws: %v %v", a, b)
	}
}

// A sequence's draws depend on its own generator only: the same sequence
// gets the same tokens whether it is sampled alone or beside others.
func TestPerSequenceGenerators(t *testing.T) {
	row := []float32{0, 0, 0, 0, 0, 0, 0, 0}
	alone, beside := New(Config{Seed: 1}, 3), New(Config{Seed: 1}, 3)
	one := logits(t, [][]float32{row})
	two := logits(t, [][]float32{row, row})
	for i := 0; i < 50; i++ {
		a, err := alone.Next(one, []int{2})
		if err != nil {
			t.Fatal(err)
		}
		b, err := beside.Next(two, []int{0, 2})
		if err != nil {
			t.Fatal(err)
		}
		if a[0] != b[1] {
			t.Fatalf("step %d: sequence 2 drew %d alone and %d beside sequence 0", i, a[0], b[1])
		}
	}
	if _, err := alone.Next(one, []int{3}); err == nil {
		t.Fatal("sequence outside the processor: no error")
	}
}
