package generate_test

import (
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkSmallRows compares, at GPT-2 small size and 5 rows, every block
// weight and the LM head through the small-batch kernels against libtorch's
// gemm (addmm / matmul), alternating so both see the same machine load.
func BenchmarkSmallRows(b *testing.B) {
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), gpt2.Presets["gpt2"])
	if err != nil {
		b.Fatal(err)
	}
	store.SetTrainable("", false)
	torchrt.NoGrad(func() {
		const r = 5
		x := ts.MustRandn([]int64{r, 768}, gotch.Float, gotch.CPU)
		x4 := ts.MustRandn([]int64{r, 3072}, gotch.Float, gotch.CPU)
		in := func(c *nn.Conv1D) *ts.Tensor {
			if c.Weight.MustSize()[0] == 3072 {
				return x4
			}
			return x
		}
		blocksKernel := func() {
			for _, blk := range m.Blocks {
				for _, c := range []*nn.Conv1D{blk.Attn, blk.Proj, blk.Fc, blk.MlpProj} {
					c.Forward(in(c)).MustDrop()
				}
			}
		}
		blocksGemm := func() {
			for _, blk := range m.Blocks {
				for _, c := range []*nn.Conv1D{blk.Attn, blk.Proj, blk.Fc, blk.MlpProj} {
					c.Bias.MustAddmm(in(c), c.Weight, false).MustDrop()
				}
			}
		}
		headKernel := func() { nn.MatmulT(x, m.WTE).MustDrop() }
		headGemm := func() {
			wt := m.WTE.MustT(false)
			x.MustMatmul(wt, false).MustDrop()
			wt.MustDrop()
		}
		fs := []func(){blocksKernel, blocksGemm, headKernel, headGemm}
		best := make([]time.Duration, len(fs))
		for i := 0; i < b.N; i++ {
			for j, f := range fs {
				t := time.Now()
				f()
				if d := time.Since(t); best[j] == 0 || d < best[j] {
					best[j] = d
				}
			}
		}
		for j, name := range []string{"blocks-kernel-ms", "blocks-gemm-ms", "head-kernel-ms", "head-gemm-ms"} {
			b.ReportMetric(float64(best[j].Microseconds())/1e3, name)
		}
	})
}
