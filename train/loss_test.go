package train

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
)

// captionLoss (LM head on real-token positions only) equals Model.Loss on
// a padded batch, in value and in gradient.
func TestCaptionLossMatchesModelLoss(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		c := tinyConfig("unused", "")
		c.MappingType, c.NumLayers, c.Dropout = kind, 2, "0"
		m, err := c.NewModel(clipDim, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		b := &Batch{B: 3, T: 5, D: clipDim, Emb: make([]float32, 3*clipDim),
			Tokens: []int64{5, 9, 13, 0, 0, 7, 7, 7, 7, 13, 0, 40, 0, 0, 0},
			Mask:   []float32{1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}}
		for i := range b.Emb {
			b.Emb[i] = float32(math.Sin(float64(i)))
		}
		db := toDevice(b, m.PrefixLength(), gotch.CPU)
		fast, err := captionLoss(m, db, true)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := m.Loss(db.clip, db.tokens, db.mask, true)
		if err != nil {
			t.Fatal(err)
		}
		fv, rv := fast.Float64Values()[0], ref.Float64Values()[0]
		if math.Abs(fv-rv) > 1e-5 {
			t.Errorf("%s: captionLoss %v, Model.Loss %v", kind, fv, rv)
		}
		fast.MustBackward()
		p := m.Store.Trainable()[0]
		g1 := p.Tensor.MustGrad(false).Float64Values(true)
		ZeroGrad(m.Store.Trainable())
		ref.MustBackward()
		g2 := p.Tensor.MustGrad(false).Float64Values(true)
		for i := range g1 {
			if math.Abs(g1[i]-g2[i]) > 1e-5 {
				t.Fatalf("%s: grad of %s[%d]: %v vs %v", kind, p.Name, i, g1[i], g2[i])
			}
		}
		db.free()
	}
}
