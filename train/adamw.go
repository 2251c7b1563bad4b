package train

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/nn"
)

// AdamW is HuggingFace transformers.AdamW (the optimizer the original
// train.py uses), not torch.optim.AdamW: eps is added to sqrt(v) without
// bias-correcting v inside the root, and both bias corrections are folded
// into the step size lr·sqrt(1-β2^t)/(1-β1^t). Weight decay, when positive,
// is decoupled and applied after the update with the plain lr.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	params                         []nn.Named
	expAvg, expAvgSq               []*ts.Tensor
	steps                          []int64 // per parameter, as HF keeps state["step"]
	threads                        int     // the fused kernel's threads: libtorch's count when created
}

// NewAdamW creates zeroed moments for params (the trainable ones).
func NewAdamW(params []nn.Named, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: weightDecay, params: params,
		threads: torchrt.IntraOpThreads()}
	for _, p := range params {
		o.expAvg = append(o.expAvg, p.Tensor.MustZerosLike(false))
		o.expAvgSq = append(o.expAvgSq, p.Tensor.MustZerosLike(false))
		o.steps = append(o.steps, 0)
	}
	return o
}

// Step updates every parameter that has a gradient with learning rate lr.
// Contiguous float32 CPU parameters take the fused one-pass kernel
// (adamw_fused.go), on libtorch's thread count; others (CUDA, say) take
// libtorch's elementwise ops.
func (o *AdamW) Step(lr float64) {
	noGrad(func() {
		var spans []fusedSpan
		var held []*ts.Tensor // gradients the spans point into
		for i, p := range o.params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			o.steps[i]++
			stepSize := o.stepSize(lr, o.steps[i])
			if fusable(p.Tensor, g, o.expAvg[i], o.expAvgSq[i]) {
				spans = o.addSpans(spans, i, g, lr, stepSize)
				held = append(held, g)
				continue
			}
			o.stepTorch(i, g, lr, stepSize)
			g.MustDrop()
		}
		runSpans(spans, o.threads)
		for _, g := range held {
			g.MustDrop()
		}
	})
}

// stepTorch is Step for parameter i with libtorch's elementwise ops.
func (o *AdamW) stepTorch(i int, g *ts.Tensor, lr, stepSize float64) {
	p, m, v := o.params[i].Tensor, o.expAvg[i], o.expAvgSq[i]
	// m = β1·m + (1-β1)·g; lerp computes the same in one pass.
	m.MustLerp_(g, ts.FloatScalar(1-o.Beta1))
	// v = β2·v + (1-β2)·g²
	v.MustMulScalar_(ts.FloatScalar(o.Beta2))
	gs := g.MustMulScalar(ts.FloatScalar(1-o.Beta2), false)
	v.MustAddcmul_(gs, g)
	gs.MustDrop()
	// p -= stepSize·m/(sqrt(v)+eps), as p.addcdiv_(m, denom/-stepSize)
	// since gotch's addcdiv_ has no value argument.
	denom := v.MustSqrt(false)
	denom.MustAddScalar_(ts.FloatScalar(o.Eps))
	if stepSize != 0 {
		denom.MustDivScalar_(ts.FloatScalar(-stepSize))
		p.MustAddcdiv_(m, denom)
	}
	denom.MustDrop()
	if o.WeightDecay > 0 {
		p.MustMulScalar_(ts.FloatScalar(1 - lr*o.WeightDecay))
	}
}

// ZeroGrad zeroes the gradients in place (PyTorch's zero_grad without
// set_to_none, which the original's torch 1.x did).
func ZeroGrad(params []nn.Named) {
	noGrad(func() {
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if g.MustDefined() {
				g.MustZero_()
			}
			g.MustDrop()
		}
	})
}

// ClipGradNorm scales gradients so their global 2-norm is at most maxNorm,
// as torch.nn.utils.clip_grad_norm_ does, and returns the norm before.
func ClipGradNorm(params []nn.Named, maxNorm float64) float64 {
	var total float64
	noGrad(func() {
		var grads []*ts.Tensor
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			grads = append(grads, g)
		}
		defer func() {
			for _, g := range grads {
				g.MustDrop()
			}
		}()
		if len(grads) == 0 {
			return
		}
		norms := make([]*ts.Tensor, len(grads))
		for i, g := range grads {
			norms[i] = g.MustNorm(false)
		}
		st := ts.MustStack(norms, 0)
		for _, n := range norms {
			n.MustDrop()
		}
		tn := st.MustNorm(true)
		total = tn.Float64Values(true)[0]
		coef := maxNorm / (total + 1e-6)
		if coef < 1 {
			for _, g := range grads {
				g.MustMulScalar_(ts.FloatScalar(coef))
			}
		}
	})
	return total
}

// LinearWarmup is transformers.get_linear_schedule_with_warmup's factor for
// optimizer step `step` (0-based: the first step's factor is 0 when there is
// a warmup): step/warmup during warmup, then linear decay to 0 at total.
func LinearWarmup(step, warmup, total int) float64 {
	if step < warmup {
		return float64(step) / float64(max(1, warmup))
	}
	return math.Max(0, float64(total-step)/float64(max(1, total-warmup)))
}

// state returns the moments as raw tensors and the step counts, for the
// trainer state file.
func (o *AdamW) state() (map[string]tensorfile.RawTensor, map[string]int64, error) {
	out := map[string]tensorfile.RawTensor{}
	steps := map[string]int64{}
	for i, p := range o.params {
		for _, s := range []struct {
			kind string
			t    *ts.Tensor
		}{{"exp_avg", o.expAvg[i]}, {"exp_avg_sq", o.expAvgSq[i]}} {
			rt, err := tensorfile.FromTorch(s.t)
			if err != nil {
				return nil, nil, fmt.Errorf("optimizer %s of %s: %w", s.kind, p.Name, err)
			}
			out[s.kind+"."+p.Name] = rt
		}
		steps[p.Name] = o.steps[i]
	}
	return out, steps, nil
}

// load restores the moments saved by state from a safetensors file.
func (o *AdamW) load(src *tensorfile.SafetensorsFile, steps map[string]int64) error {
	for i, p := range o.params {
		n, ok := steps[p.Name]
		if !ok {
			return fmt.Errorf("%s: no optimizer step count for %s", src.Path(), p.Name)
		}
		o.steps[i] = n
		for _, s := range []struct {
			kind string
			t    *ts.Tensor
		}{{"exp_avg", o.expAvg[i]}, {"exp_avg_sq", o.expAvgSq[i]}} {
			name := s.kind + "." + p.Name
			rt, err := src.Tensor(name)
			if err != nil {
				return fmt.Errorf("%s: %w", src.Path(), err)
			}
			x, err := tensorfile.ToTorch(name, rt, s.t.MustDevice())
			if err != nil {
				return fmt.Errorf("%s: %w", src.Path(), err)
			}
			if a, b := x.MustSize(), s.t.MustSize(); fmt.Sprint(a) != fmt.Sprint(b) {
				x.MustDrop()
				return fmt.Errorf("%s: %s has shape %v, the parameter %v", src.Path(), name, a, b)
			}
			noGrad(func() { s.t.Copy_(x) })
			x.MustDrop()
		}
	}
	return nil
}
