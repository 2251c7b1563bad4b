package clipcap_test

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// relErr is ‖a − b‖ / ‖b‖ (Frobenius norms).
func relErr(a, b *ts.Tensor) float64 {
	d := a.MustSub(b, false)
	num := d.MustNorm(true).Float64Values(true)[0]
	den := b.MustNorm(false).Float64Values(true)[0]
	return num / den
}

// bf16 keeps 8 significant bits (unit roundoff 2^-9 ≈ 0.2%); each matrix
// product rounds its operands once and accumulates in fp32. Measured on
// these models: logits 0.6% relative (Frobenius) error, gradients at most
// 4.5% (the transformer mapper's first layer, the end of the longest
// backward chain). The bounds: 2% for logits, 10% for every gradient.
const (
	bf16LogitsBound = 0.02
	bf16GradBound   = 0.10
)

// With autocast bf16 a model's logits and its parameters' gradients stay
// within those bounds of fp32, the parameters and their gradients are fp32,
// and no matrix product escapes the cast (logits differ from fp32 at all).
func TestBF16LogitsAndGradsNearFP32(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		t.Run(kind, func(t *testing.T) {
			g := gpt2.Presets["gpt2"]
			g.NEmbd, g.NLayer, g.NHead, g.VocabSize, g.NPositions = 256, 4, 8, 2000, 128
			g.ResidPdrop, g.EmbdPdrop, g.AttnPdrop = 0, 0, 0
			mc := clipcap.Config{GPT2: g, Mapper: mapper.Config{Kind: mapper.Kind(kind), ClipDim: 512, EmbedDim: 256, PrefixLength: 10}}
			if kind == "transformer" {
				mc.Mapper.ClipLength, mc.Mapper.NumLayers = 10, 2
			}
			torchrt.ManualSeed(3)
			m, err := clipcap.New(mc, gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			const b, tl = 6, 20
			clip := ts.MustRandn([]int64{b, 512}, gotch.Float, gotch.CPU)
			tokens := ts.MustRandint(2000, []int64{b, tl}, gotch.Int64, gotch.CPU)
			mask := ts.MustOnes([]int64{b, tl}, gotch.Float, gotch.CPU)
			run := func() (*ts.Tensor, map[string]*ts.Tensor) {
				logits, err := m.Forward(clip, tokens, mask, false)
				if err != nil {
					t.Fatal(err)
				}
				loss, err := m.Loss(clip, tokens, mask, false)
				if err != nil {
					t.Fatal(err)
				}
				loss.MustBackward()
				grads := map[string]*ts.Tensor{}
				for _, p := range m.Store.Trainable() {
					gr := p.Tensor.MustGrad(false)
					grads[p.Name] = gr.MustDetach(false).MustMulScalar(ts.FloatScalar(1), true)
					gr.MustDrop()
					gr = p.Tensor.MustGrad(false)
					gr.MustZero_()
					gr.MustDrop()
				}
				return logits.MustDetach(true), grads
			}
			ref, refGrads := run()
			if err := m.Store.SetAutocast(gotch.BFloat16); err != nil {
				t.Fatal(err)
			}
			got, gotGrads := run()
			if got.DType() != gotch.Float {
				t.Fatalf("bf16 logits have dtype %v, want fp32", got.DType())
			}
			e := relErr(got, ref)
			t.Logf("logits: relative error %.2e", e)
			if !(e < bf16LogitsBound) || e == 0 {
				t.Errorf("bf16 logits relative error %.3g, want in (0, %g)", e, bf16LogitsBound)
			}
			worst, worstName := 0.0, ""
			for _, p := range m.Store.Trainable() {
				if p.Tensor.DType() != gotch.Float || gotGrads[p.Name].DType() != gotch.Float {
					t.Fatalf("%s: parameter %v, gradient %v: want fp32 masters", p.Name, p.Tensor.DType(), gotGrads[p.Name].DType())
				}
				e := relErr(gotGrads[p.Name], refGrads[p.Name])
				if math.IsNaN(e) || e > worst {
					worst, worstName = e, p.Name
				}
			}
			t.Logf("gradients: worst relative error %.2e (%s)", worst, worstName)
			if !(worst < bf16GradBound) {
				t.Errorf("bf16 gradient of %s: relative error %.3g, want < %g", worstName, worst, bf16GradBound)
			}
		})
	}
}
