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
