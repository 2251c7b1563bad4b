package gpt2

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// The decoding step in plain memory. With bf16 or int8 weights a GPT-2
// small token reads 60–125 MB, a few milliseconds at this class of
// machine's bandwidth, while the twenty-odd libtorch calls a layer makes
// between the weight products cost about 4 ms a token in dispatch alone.
// stepRows does one new position for every row with the low-precision
// products (nn.LowP.MulRows) and the row operations of nn (layer norm,
// cached attention, GELU, adds), writing into the same cache tensors the
// libtorch path uses, so the two paths interleave freely (the prefix goes
// through Forward's batched path, then each token through this one).

// stepRowsCalls counts stepRows calls, for tests.
var stepRowsCalls atomic.Int64

// fastStep reports whether Forward can take stepRows for this call.
func (m *Model) fastStep(t int64, mask *ts.Tensor, cache *Cache, train bool, dev gotch.Device) bool {
	if t != 1 || mask != nil || cache == nil || train || dev.IsCuda() || m.Head == nil {
		return false
	}
	if m.Cfg.Activation != "gelu_new" && m.Cfg.Activation != "gelu_pytorch_tanh" {
		return false
	}
	for _, b := range m.Blocks {
		if b.Attn.Low == nil || b.Proj.Low == nil || b.Fc.Low == nil || b.MlpProj.Low == nil {
			return false
		}
	}
	return cache.K[0].DType() == gotch.Float
}

// floats views a contiguous float32 CPU tensor's memory; the tensor must
// outlive the slice.
func floats(t *ts.Tensor) []float32 {
	return unsafe.Slice((*float32)(t.MustDataPtr()), t.Numel())
}

// stepRows runs one position for each row of embeds [B, 1, E] at position
// cache.Len and returns the final hidden states [B, 1, E] (after ln_f).
func (m *Model) stepRows(embeds *ts.Tensor, cache *Cache) (*ts.Tensor, error) {
	stepRowsCalls.Add(1)
	e := m.Cfg.NEmbd
	b := embeds.MustSize()[0]
	pos := cache.Len
	heads := m.Cfg.NHead
	in := embeds.MustContiguous(false)
	defer in.MustDrop()
	out := ts.MustEmpty([]int64{b, 1, e}, gotch.Float, gotch.CPU)

	x := make([]float32, b*e)
	copy(x, floats(in))
	wpe := floats(m.WPE)[pos*e : (pos+1)*e]
	for r := int64(0); r < b; r++ {
		if err := nn.AddRows(x[r*e:(r+1)*e], wpe); err != nil {
			return nil, err
		}
	}
	h := make([]float32, b*e)
	qkv := make([]float32, 3*b*e)
	ctx := make([]float32, b*e)
	a := make([]float32, b*e)
	f := make([]float32, b*m.Cfg.Inner())
	eps := m.Cfg.LayerNormEps
	// Every row operation checks its sizes before it touches memory, so a
	// layer runs to its end and reports its first error.
	var err error
	check := func(opErr error) {
		if err == nil {
			err = opErr
		}
	}
	for i, blk := range m.Blocks {
		check(layerNorm(blk.Ln1, x, h, e, eps))
		check(blk.Attn.Low.MulRows(h, qkv, floats(blk.Attn.Bias)))
		check(nn.AttendCached(qkv, floats(cache.K[i]), floats(cache.V[i]), ctx, int(heads), int(e/heads),
			int(cache.MaxLen), int(pos)))
		check(blk.Proj.Low.MulRows(ctx, a, floats(blk.Proj.Bias)))
		check(nn.AddRows(x, a))
		check(layerNorm(blk.Ln2, x, h, e, eps))
		check(blk.Fc.Low.MulRows(h, f, floats(blk.Fc.Bias)))
		nn.GeluTanhRows(f)
		check(blk.MlpProj.Low.MulRows(f, a, floats(blk.MlpProj.Bias)))
		check(nn.AddRows(x, a))
		if err != nil {
			out.MustDrop()
			return nil, fmt.Errorf("gpt2 step, layer %d: %w", i, err)
		}
	}
	if err := layerNorm(m.LnF, x, floats(out), e, eps); err != nil {
		out.MustDrop()
		return nil, err
	}
	cache.Len = pos + 1
	return out, nil
}

func layerNorm(l *nn.LayerNorm, x, y []float32, e int64, eps float64) error {
	return nn.LayerNormRows(x, y, int(e), floats(l.Weight), floats(l.Bias), eps)
}
