package gpt2

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/nn"
)

// The plain-memory decoding step (stepRows) computes what Forward's
// libtorch path computes with the same low-precision weights: for several
// rows, a cached prefix and then one position at a time, each step's hidden
// states match the uncached forward over the whole sequence so far, to
// float32 rounding; after a Reorder (beam search) too. The test also checks
// that the steps really took stepRows.
func TestStepRowsMatchesForward(t *testing.T) {
	m, store := smallModel(t, 5, 4)
	torchrt.NoGrad(func() {
		for _, v := range store.All() { // non-trivial biases and norms
			noise := v.Tensor.MustRandnLike(false).MustMulScalar(ts.FloatScalar(0.1), true)
			v.Tensor.MustAdd_(noise)
			noise.MustDrop()
		}
	})
	const rows, prefix, steps = 3, 5, 4
	for _, p := range []nn.Precision{nn.BF16, nn.Int8} {
		if _, err := m.SetPrecision(p); err != nil {
			t.Fatal(err)
		}
		torchrt.NoGrad(func() {
			seq := ts.MustRandn([]int64{rows, prefix + steps, 64}, gotch.Float, gotch.CPU)
			defer seq.MustDrop()
			cache := m.NewCache(rows, prefix+steps, gotch.CPU)
			defer cache.Free()
			pre := seq.MustNarrow(1, 0, prefix, false)
			h, err := m.Forward(pre, nil, cache, false)
			if err != nil {
				t.Fatal(err)
			}
			h.MustDrop()
			pre.MustDrop()
			// hist[r]: the positions row r's sequence holds, [1, 1, E] each.
			hist := make([][]*ts.Tensor, rows)
			for r := range hist {
				for i := int64(0); i < prefix; i++ {
					hist[r] = append(hist[r], seq.MustNarrow(0, int64(r), 1, false).MustNarrow(1, i, 1, true))
				}
			}
			before := stepRowsCalls.Load()
			for s := int64(0); s < steps; s++ {
				if s == 2 { // beams change parents: row 0 continues row 2's sequence
					idx := ts.MustOfSlice([]int64{2, 1, 2})
					cache.Reorder(idx)
					idx.MustDrop()
					hist[0] = append([]*ts.Tensor(nil), hist[2]...)
				}
				x := seq.MustNarrow(1, prefix+s, 1, false)
				got, err := m.Forward(x, nil, cache, false)
				if err != nil {
					t.Fatal(err)
				}
				for r := int64(0); r < rows; r++ {
					hist[r] = append(hist[r], x.MustNarrow(0, r, 1, false))
					full := ts.MustCat(hist[r], 1)
					ref, err := m.Forward(full, nil, nil, false)
					if err != nil {
						t.Fatal(err)
					}
					full.MustDrop()
					last := ref.MustNarrow(1, ref.MustSize()[1]-1, 1, true)
					mine := got.MustNarrow(0, r, 1, false)
					d := mine.MustSub(last, false)
					if e, scale := maxAbsT(d), maxAbsT(last); e > 1e-4*scale {
						t.Errorf("%s step %d row %d: hidden differs by %g (largest %g)", p, s, r, e, scale)
					}
					d.MustDrop()
					mine.MustDrop()
					last.MustDrop()
				}
				x.MustDrop()
				got.MustDrop()
			}
			if n := stepRowsCalls.Load() - before; n != steps {
				t.Errorf("%s: %d of %d steps took stepRows", p, n, steps)
			}
		})
	}
	m.SetPrecision(nn.FP32)
}
