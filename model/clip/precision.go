package clip

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// bf16 inference: every convolution and linear layer computes on a bf16
// copy of its weights made once, its input cast to bf16 and its output
// back to float32; the residual stream, LayerNorm, BatchNorm, softmax and
// the attention products stay float32. On CPUs with AVX512_BF16 oneDNN's
// bf16 products run at about twice the fp32 rate (more once the weights no
// longer fit the caches), and the towers are compute-bound: a single
// ViT-B/32 image is 50 rows per product, where weight-only int8 (GPT-2's
// memory-bound decoding format) would not help. int8 therefore means bf16
// here.

// linear is an nn.Linear with an optional bf16 copy of its weight.
type linear struct {
	*nn.Linear
	lowW, lowB *ts.Tensor // bf16 weight transposed [in, out] and bias
}

// forward maps [..., in] to [..., out]; x is not freed.
func (l *linear) forward(x *ts.Tensor) *ts.Tensor {
	if l.lowW == nil || x.DType() != gotch.Float {
		return l.Linear.Forward(x)
	}
	shape := x.MustSize()
	outShape := append(append([]int64{}, shape[:len(shape)-1]...), l.lowW.MustSize()[1])
	x2 := x.MustReshape([]int64{-1, shape[len(shape)-1]}, false)
	xl := x2.MustTotype(gotch.BFloat16, true)
	y := l.lowB.MustAddmm(xl, l.lowW, false)
	xl.MustDrop()
	return y.MustTotype(gotch.Float, true).MustView(outShape, true)
}

// SetPrecision makes the tower compute its convolutions and linear layers
// in bf16 (for bf16 and int8, see above) or back in float32 (fp32). The
// float32 weights are kept. A tower converted by Half stays as it is.
func (m *Model) SetPrecision(p nn.Precision) error {
	if m.dtype != gotch.Float {
		return fmt.Errorf("clip: the tower computes in %v; bf16 inference starts from float32", m.dtype)
	}
	m.dropLow()
	if p == nn.FP32 || p == "" {
		m.prec = nn.FP32
		return nil
	}
	if p != nn.BF16 && p != nn.Int8 {
		return fmt.Errorf("clip: precision %q: want fp32, bf16 or int8", p)
	}
	cast := func(t *ts.Tensor) *ts.Tensor { return t.MustDetach(false).MustTotype(gotch.BFloat16, true) }
	for _, c := range m.convs() {
		c.low = cast(c.w)
	}
	for _, l := range m.linears() {
		l.lowW = cast(l.Weight).MustT(true)
		l.lowB = cast(l.Bias)
	}
	m.prec = nn.BF16
	return nil
}

// Precision is the tower's inference precision: bf16 after SetPrecision
// with bf16 or int8, else fp32.
func (m *Model) Precision() nn.Precision {
	if m.prec == "" {
		return nn.FP32
	}
	return m.prec
}

func (m *Model) dropLow() {
	for _, c := range m.convs() {
		if c.low != nil {
			c.low.MustDrop()
			c.low = nil
		}
	}
	for _, l := range m.linears() {
		if l.lowW != nil {
			l.lowW.MustDrop()
			l.lowB.MustDrop()
			l.lowW, l.lowB = nil, nil
		}
	}
}

func (m *Model) convs() []*conv2d {
	if m.vit != nil {
		return []*conv2d{m.vit.conv1}
	}
	r := m.rn
	out := []*conv2d{r.conv1, r.conv2, r.conv3}
	for _, b := range r.blocks {
		out = append(out, b.conv1, b.conv2, b.conv3)
		if b.downConv != nil {
			out = append(out, b.downConv)
		}
	}
	return out
}

func (m *Model) linears() []*linear {
	if m.vit != nil {
		var out []*linear
		for _, b := range m.vit.blocks {
			out = append(out, b.inProj, b.outProj, b.fc, b.proj)
		}
		return out
	}
	p := m.rn.pool
	return []*linear{p.q, p.k, p.v, p.c}
}
