package torchrt_test

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
)

func TestManualSeedRepeats(t *testing.T) {
	draw := func() []float64 {
		x := ts.MustRandn([]int64{5}, gotch.Float, gotch.CPU)
		defer x.MustDrop()
		return x.Float64Values()
	}
	torchrt.ManualSeed(42)
	a := draw()
	b := draw()
	torchrt.ManualSeed(42)
	c := draw()
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("same seed, different draws: %v vs %v", a, c)
		}
	}
	if a[0] == b[0] {
		t.Fatalf("consecutive draws equal: %v", a)
	}
}

func TestNoGradNestsAndRestores(t *testing.T) {
	x := ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU)
	x.MustRequiresGrad_(true)
	defer x.MustDrop()
	requires := func() bool {
		y := x.MustMulScalar(ts.FloatScalar(2), false)
		defer y.MustDrop()
		return y.MustRequiresGrad()
	}
	if !requires() {
		t.Fatal("autograd off before NoGrad")
	}
	torchrt.NoGrad(func() {
		torchrt.NoGrad(func() {})
		if requires() {
			t.Error("autograd on inside NoGrad (after a nested NoGrad)")
		}
	})
	for i := 0; i < 20; i++ { // on whatever thread this goroutine now runs
		if !requires() {
			t.Fatal("autograd left off after NoGrad")
		}
	}
}
