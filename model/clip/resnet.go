package clip

import (
	"math"
	"strconv"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// avgPool is nn.AvgPool2d(k): kernel = stride = k, no padding. x is freed.
func avgPool(x *ts.Tensor, k int64) *ts.Tensor {
	return x.MustAvgPool2d([]int64{k, k}, []int64{k, k}, []int64{0, 0}, false, true, nil, true)
}

// bottleneck is CLIP's anti-aliased Bottleneck: every convolution has
// stride 1 and a stride > 1 becomes an average pool after conv2 (and before
// the downsample convolution).
type bottleneck struct {
	stride              int64
	conv1, conv2, conv3 *conv2d
	bn1, bn2, bn3       *batchNorm2d
	downConv            *conv2d // downsample.0, nil when the identity fits
	downBN              *batchNorm2d
}

func (bd *builder) bottleneck(p nn.Path, inplanes, planes, stride int64) *bottleneck {
	b := &bottleneck{
		stride: stride,
		conv1:  bd.conv(p.Sub("conv1"), inplanes, planes, 1, 1, 0),
		bn1:    newBatchNorm(p.Sub("bn1"), planes),
		conv2:  bd.conv(p.Sub("conv2"), planes, planes, 3, 1, 1),
		bn2:    newBatchNorm(p.Sub("bn2"), planes),
		conv3:  bd.conv(p.Sub("conv3"), planes, 4*planes, 1, 1, 0),
		bn3:    newBatchNorm(p.Sub("bn3"), 4*planes),
	}
	if stride > 1 || inplanes != 4*planes {
		d := p.Sub("downsample")
		b.downConv = bd.conv(d.Sub("0"), inplanes, 4*planes, 1, 1, 0)
		b.downBN = newBatchNorm(d.Sub("1"), 4*planes)
	}
	return b
}

// forward frees x and returns the block's output.
func (b *bottleneck) forward(x *ts.Tensor) *ts.Tensor {
	out := b.bn1.forward(b.conv1.forward(x), true)
	out = b.bn2.forward(b.conv2.forwardFree(out), true)
	if b.stride > 1 {
		out = avgPool(out, b.stride)
	}
	out = b.bn3.forward(b.conv3.forwardFree(out), false)
	if b.downConv != nil {
		id := x
		if b.stride > 1 {
			id = x.MustAvgPool2d([]int64{b.stride, b.stride}, []int64{b.stride, b.stride}, []int64{0, 0}, false, true, nil, false)
		}
		d := b.downBN.forward(b.downConv.forward(id), false)
		if id != x {
			id.MustDrop()
		}
		out = out.MustAdd(d, true)
		d.MustDrop()
	} else {
		out = out.MustAdd(x, true)
	}
	x.MustDrop()
	return out.MustRelu(true)
}

// forwardFree is forward that frees its input.
func (c *conv2d) forwardFree(x *ts.Tensor) *ts.Tensor {
	y := c.forward(x)
	x.MustDrop()
	return y
}

// attentionPool is AttentionPool2d: the spatial mean joins the feature map
// as an extra token, and one multi-head attention step reads it out.
type attentionPool struct {
	heads      int64
	pos        *ts.Tensor // [HW+1, C]
	q, k, v, c *linear
}

func (bd *builder) attentionPool(p nn.Path, spacial, embed, heads, out int64) *attentionPool {
	std := 1 / math.Sqrt(float64(embed))
	return &attentionPool{
		heads: heads,
		pos:   p.Param("positional_embedding", bd.normal(std), spacial*spacial+1, embed),
		k:     bd.linear(p.Sub("k_proj"), embed, embed),
		q:     bd.linear(p.Sub("q_proj"), embed, embed),
		v:     bd.linear(p.Sub("v_proj"), embed, embed),
		c:     bd.linear(p.Sub("c_proj"), embed, out),
	}
}

// forward frees x [B, C, H, W] and returns [B, out]. Only the mean token's
// output is used, so only its query is computed: the other positions'
// attention rows would be discarded anyway.
func (a *attentionPool) forward(x *ts.Tensor) *ts.Tensor {
	s := x.MustSize()
	seq := x.MustView([]int64{s[0], s[1], s[2] * s[3]}, true).MustTranspose(1, 2, true) // [B, HW, C]
	mean := seq.MustMeanDim([]int64{1}, true, seq.DType(), false)                       // [B, 1, C]
	tokens := ts.MustCat([]*ts.Tensor{mean, seq}, 1)                                    // [B, HW+1, C]
	mean.MustDrop()
	seq.MustDrop()
	tokens = tokens.MustAdd(a.pos, true)
	first := tokens.MustNarrow(1, 0, 1, false)
	q := a.q.forward(first)
	first.MustDrop()
	k := a.k.forward(tokens)
	v := a.v.forward(tokens)
	tokens.MustDrop()
	o := attention(q, k, v, a.heads) // [B, 1, C]
	out := a.c.forward(o)
	o.MustDrop()
	return out.MustSelect(1, 0, true)
}

// modifiedResNet is openai/CLIP's ModifiedResNet.
type modifiedResNet struct {
	conv1, conv2, conv3 *conv2d
	bn1, bn2, bn3       *batchNorm2d
	blocks              []*bottleneck
	pool                *attentionPool
}

func (bd *builder) modifiedResNet(p nn.Path, c Config) *modifiedResNet {
	w := c.Width
	r := &modifiedResNet{
		conv1: bd.conv(p.Sub("conv1"), 3, w/2, 3, 2, 1),
		bn1:   newBatchNorm(p.Sub("bn1"), w/2),
		conv2: bd.conv(p.Sub("conv2"), w/2, w/2, 3, 1, 1),
		bn2:   newBatchNorm(p.Sub("bn2"), w/2),
		conv3: bd.conv(p.Sub("conv3"), w/2, w, 3, 1, 1),
		bn3:   newBatchNorm(p.Sub("bn3"), w),
	}
	inplanes := w
	for stage := int64(0); stage < 4; stage++ {
		planes := w << stage
		stride := int64(2)
		if stage == 0 {
			stride = 1
		}
		lp := p.Sub("layer" + itoa(stage+1))
		for i := int64(0); i < c.ResLayers[stage]; i++ {
			s := stride
			if i > 0 {
				s = 1
			}
			r.blocks = append(r.blocks, bd.bottleneck(lp.Sub(itoa(i)), inplanes, planes, s))
			inplanes = 4 * planes
		}
	}
	r.pool = bd.attentionPool(p.Sub("attnpool"), c.InputResolution/32, 32*w, c.Heads, c.EmbedDim)
	return r
}

// forward maps x [B, 3, n, n] to [B, D]; x is not freed.
func (r *modifiedResNet) forward(x *ts.Tensor) *ts.Tensor {
	h := r.bn1.forward(r.conv1.forward(x), true)
	h = r.bn2.forward(r.conv2.forwardFree(h), true)
	h = r.bn3.forward(r.conv3.forwardFree(h), true)
	h = avgPool(h, 2)
	for _, b := range r.blocks {
		h = b.forward(h)
	}
	return r.pool.forward(h)
}

// weights lists the tensors convert_weights makes fp16 (convolutions and
// the attention pool's linears) plus the positional embedding, which is
// cast to the input dtype on use; BatchNorm stays float32.
func (r *modifiedResNet) weights() []**ts.Tensor {
	out := []**ts.Tensor{&r.conv1.w, &r.conv2.w, &r.conv3.w, &r.pool.pos}
	for _, b := range r.blocks {
		out = append(out, &b.conv1.w, &b.conv2.w, &b.conv3.w)
		if b.downConv != nil {
			out = append(out, &b.downConv.w)
		}
	}
	for _, l := range []*linear{r.pool.q, r.pool.k, r.pool.v, r.pool.c} {
		out = append(out, &l.Weight, &l.Bias)
	}
	return out
}
