package clip

import (
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// gotch v0.9.1's in-place ops (Add_, Relu_, ...) replace the Go tensor's
// handle without freeing the old one, which keeps the whole tensor alive
// forever; this package therefore uses only out-of-place ops on
// intermediates, freeing inputs with del=true.

// builder carries what every layer constructor needs: whether to draw
// random weights (New) or only allocate them for a checkpoint to overwrite
// (Load: zero fill is much cheaper than sampling 300M normals), and the
// shared undefined tensor libtorch reads as "no bias".
type builder struct {
	random bool
	noBias *ts.Tensor
}

// normal is N(0, std²) for random models, zeros when loading.
func (b *builder) normal(std float64) nn.Init {
	if b.random {
		return nn.Normal{Std: std}
	}
	return nn.Const{Value: 0}
}

// linear is nn.Linear(in, out) with bias, initialized by normal.
func (b *builder) linear(p nn.Path, in, out int64) *linear {
	std := 1 / math.Sqrt(float64(in))
	return &linear{Linear: &nn.Linear{
		Weight: p.Param("weight", b.normal(std), out, in),
		Bias:   p.Param("bias", nn.Const{Value: 0}, out),
	}}
}

// conv2d is nn.Conv2d without bias (every CLIP image-tower convolution).
type conv2d struct {
	w           *ts.Tensor
	stride, pad int64
	noBias      *ts.Tensor
	low         *ts.Tensor // bf16 copy of w (precision.go), or nil
}

func (b *builder) conv(p nn.Path, in, out, k, stride, pad int64) *conv2d {
	std := 1 / math.Sqrt(float64(in*k*k))
	return &conv2d{
		w:      p.Param("weight", b.normal(std), out, in, k, k),
		stride: stride, pad: pad, noBias: b.noBias,
	}
}

// forward returns conv(x); x is not freed.
func (c *conv2d) forward(x *ts.Tensor) *ts.Tensor {
	if c.low != nil && x.DType() == gotch.Float {
		xl := x.MustTotype(gotch.BFloat16, false)
		y := ts.MustConv2d(xl, c.low, c.noBias, []int64{c.stride, c.stride}, []int64{c.pad, c.pad}, []int64{1, 1}, 1)
		xl.MustDrop()
		return y.MustTotype(gotch.Float, true)
	}
	return ts.MustConv2d(x, c.w, c.noBias, []int64{c.stride, c.stride}, []int64{c.pad, c.pad}, []int64{1, 1}, 1)
}

// batchNorm2d is nn.BatchNorm2d in eval mode: it normalizes with the
// running statistics and never updates them. num_batches_tracked is not
// kept (eval never reads it).
type batchNorm2d struct {
	weight, bias, mean, variance *ts.Tensor
}

func newBatchNorm(p nn.Path, c int64) *batchNorm2d {
	return &batchNorm2d{
		weight:   p.Param("weight", nn.Const{Value: 1}, c),
		bias:     p.Param("bias", nn.Const{Value: 0}, c),
		mean:     p.Param("running_mean", nn.Const{Value: 0}, c),
		variance: p.Param("running_var", nn.Const{Value: 1}, c),
	}
}

// forward frees x and returns bn(x), with relu when relu is set. The
// statistics stay float32 (as convert_weights leaves them); other input
// dtypes are normalized in float32 and cast back, which every backend
// supports.
func (b *batchNorm2d) forward(x *ts.Tensor, relu bool) *ts.Tensor {
	var y *ts.Tensor
	if dt := x.DType(); dt == gotch.Float {
		y = ts.MustBatchNorm(x, b.weight, b.bias, b.mean, b.variance, false, 0.1, 1e-5, true)
		x.MustDrop()
	} else {
		xf := x.MustTotype(gotch.Float, true)
		yf := ts.MustBatchNorm(xf, b.weight, b.bias, b.mean, b.variance, false, 0.1, 1e-5, true)
		xf.MustDrop()
		y = yf.MustTotype(dt, true)
	}
	if relu {
		y = y.MustRelu(true)
	}
	return y
}

// layerNorm is CLIP's LayerNorm subclass: it computes in float32 whatever
// the input dtype and casts back, so fp16 towers keep fp32 statistics.
type layerNorm struct{ *nn.LayerNorm }

func newLayerNorm(p nn.Path, dim int64) layerNorm {
	return layerNorm{nn.NewLayerNorm(p, dim, 1e-5)}
}

// forward returns ln(x); x is not freed.
func (l layerNorm) forward(x *ts.Tensor) *ts.Tensor {
	if x.DType() == gotch.Float {
		return l.Forward(x)
	}
	xf := x.MustTotype(gotch.Float, false)
	y := l.Forward(xf)
	xf.MustDrop()
	return y.MustTotype(x.DType(), true)
}

// attention is softmax(q kᵀ / sqrt(d)) v over heads, as PyTorch's
// multi_head_attention_forward computes it (q is scaled before the
// product). q, k, v are [B, L, W] (q may have fewer positions than k, v);
// the result is [B, Lq, W]. Inputs are freed.
func attention(q, k, v *ts.Tensor, heads int64) *ts.Tensor {
	split := func(t *ts.Tensor) *ts.Tensor {
		s := t.MustSize()
		return t.MustView([]int64{s[0], s[1], heads, s[2] / heads}, true).MustTranspose(1, 2, true) // [B,H,L,hd]
	}
	s := q.MustSize()
	hd := s[2] / heads
	qh, kh, vh := split(q), split(k), split(v)
	qh = qh.MustMulScalar(ts.FloatScalar(1/math.Sqrt(float64(hd))), true)
	kt := kh.MustTranspose(2, 3, true)
	scores := qh.MustMatmul(kt, true)
	kt.MustDrop()
	probs := scores.MustSoftmax(-1, scores.DType(), true)
	o := probs.MustMatmul(vh, true)
	vh.MustDrop()
	return o.MustTranspose(1, 2, true).MustReshape([]int64{s[0], s[1], s[2]}, true)
}
