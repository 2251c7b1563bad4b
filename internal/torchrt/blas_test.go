package torchrt_test

import (
	"math"
	"math/rand"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
)

// TestMatmulThroughGotch checks libtorch's matmul (OpenBLAS sgemm with the
// kernel chosen at start) against a plain float64 product.
func TestMatmulThroughGotch(t *testing.T) {
	const m, k, n = 37, 64, 29
	rng := rand.New(rand.NewSource(1))
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	ta := ts.MustOfSlice(a).MustView([]int64{m, k}, true)
	tb := ts.MustOfSlice(b).MustView([]int64{k, n}, true)
	tc := ta.MustMatmul(tb, false)
	got := tc.Float64Values()
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var want float64
			for p := 0; p < k; p++ {
				want += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			if d := math.Abs(got[i*n+j] - want); d > 1e-4 {
				t.Fatalf("c[%d,%d] = %v, want %v", i, j, got[i*n+j], want)
			}
		}
	}
	if torchrt.BLASCore() == "" {
		t.Fatalf("OpenBLAS is not loaded in a process linked against libtorch")
	}
	t.Logf("OpenBLAS core %s (%s), threads %d", torchrt.BLASCore(), torchrt.Current().CoreTypeSource, torchrt.BLASThreads())
	_ = gotch.CPU
}
