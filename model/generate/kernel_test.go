package generate_test

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/nn"
)

// maxAbsDiff frees neither tensor.
func maxAbsDiff(a, b *ts.Tensor) float64 {
	d := a.MustSub(b, false).MustAbs(true).MustMax(true)
	defer d.MustDrop()
	return d.Float64Values()[0]
}

// TestSmallRowKernels checks nn's small-batch kernels (Conv1D.Forward and
// MatmulT at 2..8 rows, which beam search's steps use) against libtorch's
// gemm, at sizes that leave remainders in every loop, and that a weight
// needing gradients under grad mode still goes through libtorch.
func TestSmallRowKernels(t *testing.T) {
	const k, n = 771, 1237 // not multiples of the kernels' 8 rows, 16 lanes or 4-row blocks
	store := nn.NewStore(gotch.CPU)
	conv := nn.NewConv1D(store.Root().Sub("c"), k, n, 0.5)
	bias := ts.MustRandn([]int64{n}, gotch.Float, gotch.CPU)
	defer bias.MustDrop()
	torchrt.NoGrad(func() { conv.Bias.Copy_(bias) })
	wte := ts.MustRandn([]int64{n, k}, gotch.Float, gotch.CPU)
	defer wte.MustDrop()
	for r := int64(2); r <= nn.SmallRows; r++ {
		x := ts.MustRandn([]int64{r, 1, k}, gotch.Float, gotch.CPU)
		torchrt.NoGrad(func() {
			got := conv.Forward(x)
			x2 := x.MustView([]int64{r, k}, false)
			want := conv.Bias.MustAddmm(x2, conv.Weight, false).MustView([]int64{r, 1, n}, true)
			if d := maxAbsDiff(got, want); d > 1e-4 {
				t.Errorf("Conv1D at %d rows: max |diff| %g from addmm", r, d)
			}
			got.MustDrop()
			want.MustDrop()

			gotT := nn.MatmulT(x2, wte)
			if gotT == nil {
				t.Fatalf("MatmulT at %d rows: kernel refused a plain float32 CPU tensor", r)
			}
			wt := wte.MustT(false)
			wantT := x2.MustMm(wt, false)
			if d := maxAbsDiff(gotT, wantT); d > 1e-4 {
				t.Errorf("MatmulT at %d rows: max |diff| %g from mm", r, d)
			}
			for _, z := range []*ts.Tensor{gotT, wantT, wt, x2} {
				z.MustDrop()
			}
		})
		x.MustDrop()
	}
	// Trainable weight, grad mode on: the kernel would hide the product
	// from autograd, so the output must carry a grad function.
	x := ts.MustRandn([]int64{3, k}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	y := conv.Forward(x)
	defer y.MustDrop()
	if !y.MustRequiresGrad() {
		t.Error("Conv1D with a trainable weight under grad mode bypassed autograd")
	}
	x2 := ts.MustRandn([]int64{3, n}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, false)
	defer x2.MustDrop()
	if nn.MatmulT(x2, wte) != nil {
		t.Error("MatmulT took an input that needs gradients under grad mode")
	}
}
