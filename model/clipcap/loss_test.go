package clipcap_test

import (
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/clipcap"
)

// fullLoss is the definition Loss must equal: Forward's logits at every
// position, narrowed to the ones that predict caption tokens, padding
// ignored through the mask (not by token id).
func fullLoss(t *testing.T, m *clipcap.Model, clip, tokens, mask *ts.Tensor) *ts.Tensor {
	t.Helper()
	logits, err := m.Forward(clip, tokens, mask, false)
	if err != nil {
		t.Fatal(err)
	}
	n := tokens.MustSize()[1]
	pred := logits.MustNarrow(1, m.PrefixLength()-1, n, true).MustReshape([]int64{-1, m.Cfg.GPT2.VocabSize}, true)
	defer pred.MustDrop()
	pad := mask.MustReshape([]int64{-1}, false).MustEq(ts.IntScalar(0), true)
	target := tokens.MustReshape([]int64{-1}, false).MustMaskedFill(pad, ts.IntScalar(-100), true)
	pad.MustDrop()
	defer target.MustDrop()
	return pred.MustCrossEntropyLoss(target, ts.NewTensor(), 1, -100, 0, false)
}

func grads(m *clipcap.Model) [][]float64 {
	var out [][]float64
	for _, p := range m.Store.Trainable() {
		g := p.Tensor.MustGrad(false)
		out = append(out, g.Float64Values())
		g.MustZero_()
		g.MustDrop()
	}
	return out
}

// Loss (LM head on the positions that predict real tokens only) equals the
// full-vocabulary projection of every position on a padded batch whose
// captions include "!" (id 0), in value and in every gradient.
func TestLossMatchesFullProjection(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		t.Run(kind, func(t *testing.T) {
			m := loadOfficial(t, kind)
			d := m.Cfg.Mapper.ClipDim
			emb := make([]float32, 3*d)
			for i := range emb {
				emb[i] = float32(math.Sin(float64(i)))
			}
			clip := ts.MustOfSlice(emb).MustView([]int64{3, d}, true)
			tokens := ts.MustOfSlice([]int64{5, 0, 13, 0, 0, 7, 7, 7, 7, 13, 0, 40, 0, 0, 0}).MustView([]int64{3, 5}, true)
			mask := ts.MustOfSlice([]float32{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}).MustView([]int64{3, 5}, true)
			m.Store.SetTrainable("", true)

			fast, err := m.Loss(clip, tokens, mask, false)
			if err != nil {
				t.Fatal(err)
			}
			ref := fullLoss(t, m, clip, tokens, mask)
			fv, rv := fast.Float64Values()[0], ref.Float64Values()[0]
			if math.Abs(fv-rv) > 1e-5*math.Abs(rv) {
				t.Fatalf("Loss %v, full projection %v", fv, rv)
			}
			fast.MustBackward()
			g1 := grads(m)
			ref.MustBackward()
			g2 := grads(m)
			for k := range g1 {
				for i := range g1[k] {
					if math.Abs(g1[k][i]-g2[k][i]) > 1e-5 {
						t.Fatalf("gradient %d[%d]: %v vs %v", k, i, g1[k][i], g2[k][i])
					}
				}
			}
			// nil mask: every token is real.
			all, err := m.Loss(clip, tokens, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			ones := mask.MustOnesLike(false)
			want := fullLoss(t, m, clip, tokens, ones)
			if a, w := all.Float64Values()[0], want.Float64Values()[0]; math.Abs(a-w) > 1e-5*math.Abs(w) {
				t.Fatalf("nil mask: %v, want %v", a, w)
			}
			// A batch without caption tokens is an error, not a NaN.
			zero := mask.MustZerosLike(false)
			if _, err := m.Loss(clip, tokens, zero, false); err == nil || !strings.Contains(err.Error(), "without caption tokens") {
				t.Fatalf("all-padding batch: %v", err)
			}
		})
	}
}
