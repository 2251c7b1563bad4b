package nn

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
)

// BenchmarkLowP times one decoding step's product with GPT-2 small's
// c_fc (768x3072, Conv1D layout) and LM head (50257x768, transposed) per
// precision, at 1 row (greedy) and 5 rows (beam 5); fp32 is the existing
// path (gemv / small-row kernel). GB/s is weight bytes read per second.
// The bf16 and int8 rows use the packed dot-product kernels where the CPU
// has them (level 3); LOWP_LEVEL caps the level, to compare.
func BenchmarkLowP(b *testing.B) {
	if v := os.Getenv("LOWP_LEVEL"); v != "" {
		level, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("LOWP_LEVEL=%q: want 0 (portable C) to 3 (packed dot products)", v)
		}
		b.Logf("kernel level %d", lowPLevel(level))
		defer lowPLevel(3)
	}
	for _, shape := range []struct {
		name       string
		k, n       int64
		transposed bool
	}{{"c_fc", 768, 3072, false}, {"lm_head", 768, 50257, true}} {
		ws := []int64{shape.k, shape.n}
		if shape.transposed {
			ws = []int64{shape.n, shape.k}
		}
		w := ts.MustRandn(ws, gotch.Float, gotch.CPU)
		for _, rows := range []int64{1, 5} {
			x := ts.MustRandn([]int64{rows, shape.k}, gotch.Float, gotch.CPU)
			for _, p := range []Precision{FP32, BF16, Int8} {
				var low *LowP
				bytes := 4 * shape.k * shape.n
				if p != FP32 {
					// Conv1D.SetPrecision stores its weight transposed too.
					wt := w
					if !shape.transposed {
						wt = w.MustT(false).MustContiguous(true)
					}
					low, _ = NewLowP(wt, true, p)
					bytes = low.Bytes()
				}
				b.Run(fmt.Sprintf("%s/rows%d/%s", shape.name, rows, p), func(b *testing.B) {
					torchrt.NoGrad(func() {
						for i := 0; i < b.N; i++ {
							var y *ts.Tensor
							switch {
							case low != nil:
								y = low.Forward(x, nil)
							case shape.transposed && rows == 1:
								y = w.MustMv(x.MustView([]int64{shape.k}, false), false)
							case shape.transposed:
								y = MatmulT(x, w)
							default:
								c := &Conv1D{Weight: w, Bias: ts.MustZeros([]int64{shape.n}, gotch.Float, gotch.CPU)}
								y = c.Forward(x)
							}
							y.MustDrop()
						}
					})
					b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
				})
			}
			x.MustDrop()
		}
		w.MustDrop()
	}
}
