package clip

import (
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// residualBlock is ResidualAttentionBlock: pre-norm attention and an MLP
// (QuickGELU in OpenAI's towers), each added back to the residual stream.
type residualBlock struct {
	heads      int64
	act        Activation
	ln1, ln2   layerNorm
	inProj     *linear // attn.in_proj_weight [3W, W] / in_proj_bias
	outProj    *linear // attn.out_proj
	fc, proj   *linear // mlp.c_fc, mlp.c_proj
	quickScale *ts.Scalar
}

func (bd *builder) residualBlock(p nn.Path, c Config) *residualBlock {
	width, heads, hidden := c.Width, c.Heads, c.mlpWidth()
	attn := p.Sub("attn")
	std := 1 / math.Sqrt(float64(width))
	return &residualBlock{
		heads: heads,
		act:   c.activation(),
		ln1:   newLayerNorm(p.Sub("ln_1"), width),
		inProj: &linear{Linear: &nn.Linear{
			Weight: attn.Param("in_proj_weight", bd.normal(std), 3*width, width),
			Bias:   attn.Param("in_proj_bias", nn.Const{Value: 0}, 3*width),
		}},
		outProj:    bd.linear(attn.Sub("out_proj"), width, width),
		ln2:        newLayerNorm(p.Sub("ln_2"), width),
		fc:         bd.linear(p.Sub("mlp").Sub("c_fc"), width, hidden),
		proj:       bd.linear(p.Sub("mlp").Sub("c_proj"), hidden, width),
		quickScale: ts.FloatScalar(1.702),
	}
}

// forward frees x [B, L, W] and returns the block's output.
func (b *residualBlock) forward(x *ts.Tensor) *ts.Tensor {
	h := b.ln1.forward(x)
	qkv := b.inProj.forward(h)
	h.MustDrop()
	parts := qkv.MustChunk(3, -1, true)
	o := attention(parts[0], parts[1], parts[2], b.heads)
	a := b.outProj.forward(o)
	o.MustDrop()
	x = x.MustAdd(a, true)
	a.MustDrop()

	h = b.ln2.forward(x)
	f := b.fc.forward(h)
	h.MustDrop()
	switch b.act {
	case GELU:
		f = f.MustGelu("none", true)
	case GELUTanh:
		f = f.MustGelu("tanh", true)
	default:
		f = quickGELU(f, b.quickScale)
	}
	m := b.proj.forward(f)
	f.MustDrop()
	x = x.MustAdd(m, true)
	m.MustDrop()
	return x
}

// quickGELU is CLIP's x * sigmoid(1.702 x); x is freed.
func quickGELU(x *ts.Tensor, scale *ts.Scalar) *ts.Tensor {
	s := x.MustMulScalar(scale, false).MustSigmoid(true)
	y := x.MustMul(s, true)
	s.MustDrop()
	return y
}

// visionTransformer is openai/CLIP's VisionTransformer.
type visionTransformer struct {
	cfg            Config
	conv1          *conv2d
	classEmbedding *ts.Tensor // [W]
	posEmbedding   *ts.Tensor // [grid²+1, W]
	lnPre, lnPost  layerNorm
	blocks         []*residualBlock
	proj           *ts.Tensor // [W, D]
}

func (bd *builder) visionTransformer(p nn.Path, c Config) *visionTransformer {
	w := c.Width
	scale := 1 / math.Sqrt(float64(w))
	grid := c.InputResolution / c.PatchSize
	v := &visionTransformer{
		cfg:            c,
		conv1:          bd.conv(p.Sub("conv1"), 3, w, c.PatchSize, c.PatchSize, 0),
		classEmbedding: p.Param("class_embedding", bd.normal(scale), w),
		posEmbedding:   p.Param("positional_embedding", bd.normal(scale), grid*grid+1, w),
		lnPre:          newLayerNorm(p.Sub("ln_pre"), w),
	}
	blocks := p.Sub("transformer").Sub("resblocks")
	for i := int64(0); i < c.Layers; i++ {
		v.blocks = append(v.blocks, bd.residualBlock(blocks.Sub(itoa(i)), c))
	}
	v.lnPost = newLayerNorm(p.Sub("ln_post"), w)
	v.proj = p.Param("proj", bd.normal(scale), w, c.EmbedDim)
	return v
}

// forward maps x [B, 3, n, n] to [B, D]; x is not freed. The sequence is
// kept batch-first ([B, L, W]); OpenAI's LND permutation only suits
// nn.MultiheadAttention and changes nothing numerically.
func (v *visionTransformer) forward(x *ts.Tensor) *ts.Tensor {
	b := x.MustSize()[0]
	w := v.cfg.Width
	p := v.conv1.forward(x)                                           // [B, W, g, g]
	p = p.MustView([]int64{b, w, -1}, true).MustTranspose(1, 2, true) // [B, g², W]
	cls := v.classEmbedding.MustView([]int64{1, 1, w}, false).MustExpand([]int64{b, 1, w}, false, true)
	seq := ts.MustCat([]*ts.Tensor{cls, p}, 1) // [B, g²+1, W]
	cls.MustDrop()
	p.MustDrop()
	seq = seq.MustAdd(v.posEmbedding, true)
	h := v.lnPre.forward(seq)
	seq.MustDrop()
	for _, blk := range v.blocks {
		h = blk.forward(h)
	}
	first := h.MustSelect(1, 0, true) // [B, W]
	n := v.lnPost.forward(first)
	first.MustDrop()
	return n.MustMatmul(v.proj, true)
}

// weights lists the tensors clip/model.py's convert_weights makes fp16,
// plus the embeddings it casts to the input dtype on use.
func (v *visionTransformer) weights() []**ts.Tensor {
	out := []**ts.Tensor{&v.conv1.w, &v.classEmbedding, &v.posEmbedding, &v.proj}
	for _, b := range v.blocks {
		for _, l := range []*linear{b.inProj, b.outProj, b.fc, b.proj} {
			out = append(out, &l.Weight, &l.Bias)
		}
	}
	return out
}
