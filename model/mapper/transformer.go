package mapper

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// transformerMapper is the official TransformerMapper: Linear(D, clip_length·E)
// → concat with the learned prefix_const [L, E] → pre-norm transformer (ReLU
// MLP with ratio 2, q and kv projections without bias) → last L positions.
type transformerMapper struct {
	linear      *nn.Linear
	prefixConst *ts.Tensor
	layers      []*mapperLayer
	cfg         Config
}

type mapperLayer struct {
	norm1, norm2 *nn.LayerNorm
	toQueries    *nn.Linear // attn.to_queries, no bias
	toKeysValues *nn.Linear // attn.to_keys_values, no bias, [2E, E]
	project      *nn.Linear // attn.project
	fc1, fc2     *nn.Linear // mlp.fc1, mlp.fc2
	heads        int64
	store        *nn.Store // autocast setting of the attention products
}

func newTransformer(p nn.Path, c Config) *transformerMapper {
	e := c.EmbedDim
	m := &transformerMapper{
		linear: nn.NewLinear(p.Sub("linear"), c.ClipDim, c.ClipLength*e, true),
		// torch.randn in the original.
		prefixConst: p.Param("prefix_const", nn.Normal{Std: 1}, c.PrefixLength, e),
		cfg:         c,
	}
	for i := int64(0); i < c.NumLayers; i++ {
		lp := p.Sub("transformer").Sub("layers").Sub(fmt.Sprint(i))
		m.layers = append(m.layers, &mapperLayer{
			norm1:        nn.NewLayerNorm(lp.Sub("norm1"), e, 1e-5),
			toQueries:    nn.NewLinear(lp.Sub("attn").Sub("to_queries"), e, e, false),
			toKeysValues: nn.NewLinear(lp.Sub("attn").Sub("to_keys_values"), e, 2*e, false),
			project:      nn.NewLinear(lp.Sub("attn").Sub("project"), e, e, true),
			norm2:        nn.NewLayerNorm(lp.Sub("norm2"), e, 1e-5),
			fc1:          nn.NewLinear(lp.Sub("mlp").Sub("fc1"), e, 2*e, true),
			fc2:          nn.NewLinear(lp.Sub("mlp").Sub("fc2"), 2*e, e, true),
			heads:        c.heads(),
			store:        p.Store(),
		})
	}
	return m
}

func (m *transformerMapper) Forward(x *ts.Tensor, train bool) *ts.Tensor {
	b := x.MustSize()[0]
	e := m.cfg.EmbedDim
	h := m.linear.Forward(x).MustView([]int64{b, m.cfg.ClipLength, e}, true)
	prefix := m.prefixConst.MustUnsqueeze(0, false).MustExpand([]int64{b, m.cfg.PrefixLength, e}, false, true)
	seq := ts.MustCat([]*ts.Tensor{h, prefix}, 1)
	h.MustDrop()
	prefix.MustDrop()
	for _, l := range m.layers {
		next := l.forward(seq)
		seq.MustDrop()
		seq = next
	}
	return seq.MustNarrow(1, m.cfg.ClipLength, m.cfg.PrefixLength, true)
}

func (l *mapperLayer) forward(x *ts.Tensor) *ts.Tensor {
	shape := x.MustSize()
	b, n, c := shape[0], shape[1], shape[2]
	hd := c / l.heads

	h := l.norm1.Forward(x)
	q := l.toQueries.Forward(h).MustView([]int64{b, n, l.heads, hd}, true).MustPermute([]int64{0, 2, 1, 3}, true)
	kv := l.toKeysValues.Forward(h).MustView([]int64{b, n, 2, l.heads, hd}, true)
	h.MustDrop()
	k := kv.MustSelect(2, 0, false).MustPermute([]int64{0, 2, 3, 1}, true) // [b, h, hd, n]
	v := kv.MustSelect(2, 1, true).MustPermute([]int64{0, 2, 1, 3}, true)  // [b, h, n, hd]
	scores := l.store.Matmul(q, k).MustMulScalar(ts.FloatScalar(1/math.Sqrt(float64(hd))), true)
	q.MustDrop()
	k.MustDrop()
	probs := scores.MustSoftmax(-1, gotch.Float, true)
	ctx := l.store.Matmul(probs, v)
	probs.MustDrop()
	ctx = ctx.MustPermute([]int64{0, 2, 1, 3}, true).MustReshape([]int64{b, n, c}, true)
	v.MustDrop()
	a := l.project.Forward(ctx)
	ctx.MustDrop()
	x1 := x.MustAdd(a, false)
	a.MustDrop()

	h2 := l.norm2.Forward(x1)
	f := l.fc1.Forward(h2).MustRelu(true)
	h2.MustDrop()
	o := l.fc2.Forward(f)
	f.MustDrop()
	out := x1.MustAdd(o, true)
	o.MustDrop()
	return out
}
