package gpt2

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// Model is GPT2LMHeadModel. Its parameters are created under the path it is
// given with HuggingFace's names below "transformer" (wte, wpe, h.{i}.*,
// ln_f); the LM head is tied to wte, as in the published checkpoints.
type Model struct {
	Cfg      Config
	WTE, WPE *ts.Tensor
	Blocks   []*Block
	LnF      *nn.LayerNorm
	store    *nn.Store // autocast setting of the LM head and attention products
	// Head, when set, is the tied LM head in bf16 or int8 (SetPrecision);
	// token lookups keep reading the float32 WTE.
	Head *nn.LowP
}

// Block is one transformer layer, h.{i}.
type Block struct {
	Ln1, Ln2     *nn.LayerNorm
	Attn, Proj   *nn.Conv1D // attn.c_attn, attn.c_proj
	Fc, MlpProj  *nn.Conv1D // mlp.c_fc, mlp.c_proj
	heads, width int64
	store        *nn.Store
}

// New creates the model's parameters under p.Sub("transformer"), initialized
// as GPT-2's _init_weights does (N(0, 0.02), c_proj scaled by 1/sqrt(2·layers)).
func New(p nn.Path, cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tp := p.Sub("transformer")
	std := cfg.InitializerRange
	projStd := std / math.Sqrt(2*float64(cfg.NLayer))
	m := &Model{
		Cfg:   cfg,
		WTE:   tp.Sub("wte").Param("weight", nn.Normal{Std: std}, cfg.VocabSize, cfg.NEmbd),
		WPE:   tp.Sub("wpe").Param("weight", nn.Normal{Std: std}, cfg.NPositions, cfg.NEmbd),
		store: p.Store(),
	}
	for i := int64(0); i < cfg.NLayer; i++ {
		hp := tp.Sub("h").Sub(fmt.Sprint(i))
		m.Blocks = append(m.Blocks, &Block{
			Ln1:     nn.NewLayerNorm(hp.Sub("ln_1"), cfg.NEmbd, cfg.LayerNormEps),
			Attn:    nn.NewConv1D(hp.Sub("attn").Sub("c_attn"), cfg.NEmbd, 3*cfg.NEmbd, std),
			Proj:    nn.NewConv1D(hp.Sub("attn").Sub("c_proj"), cfg.NEmbd, cfg.NEmbd, projStd),
			Ln2:     nn.NewLayerNorm(hp.Sub("ln_2"), cfg.NEmbd, cfg.LayerNormEps),
			Fc:      nn.NewConv1D(hp.Sub("mlp").Sub("c_fc"), cfg.NEmbd, cfg.Inner(), std),
			MlpProj: nn.NewConv1D(hp.Sub("mlp").Sub("c_proj"), cfg.Inner(), cfg.NEmbd, projStd),
			heads:   cfg.NHead,
			width:   cfg.NEmbd,
			store:   p.Store(),
		})
	}
	m.LnF = nn.NewLayerNorm(tp.Sub("ln_f"), cfg.NEmbd, cfg.LayerNormEps)
	return m, nil
}

// Embed looks up token embeddings: tokens [B, T] int64 → [B, T, E].
func (m *Model) Embed(tokens *ts.Tensor) *ts.Tensor {
	return ts.MustEmbedding(m.WTE, tokens, -1, false, false)
}

// Cache holds past keys and values, preallocated for MaxLen positions so a
// decoding step writes in place instead of concatenating.
type Cache struct {
	K, V   []*ts.Tensor // per layer [B, H, MaxLen, head_dim]
	Len    int64        // positions filled
	MaxLen int64
}

// NewCache allocates a cache for batch sequences of up to maxLen positions.
func (m *Model) NewCache(batch, maxLen int64, dev gotch.Device) *Cache {
	if maxLen > m.Cfg.NPositions {
		maxLen = m.Cfg.NPositions
	}
	hd := m.Cfg.NEmbd / m.Cfg.NHead
	c := &Cache{MaxLen: maxLen}
	for range m.Blocks {
		c.K = append(c.K, ts.MustZeros([]int64{batch, m.Cfg.NHead, maxLen, hd}, gotch.Float, dev))
		c.V = append(c.V, ts.MustZeros([]int64{batch, m.Cfg.NHead, maxLen, hd}, gotch.Float, dev))
	}
	return c
}

// Reorder keeps the rows idx ([B'] int64) of every cached sequence, as beam
// search does when beams change parents.
func (c *Cache) Reorder(idx *ts.Tensor) {
	for i := range c.K {
		k := c.K[i].MustIndexSelect(0, idx, true)
		v := c.V[i].MustIndexSelect(0, idx, true)
		c.K[i], c.V[i] = k, v
	}
}

// Free releases the cache's tensors.
func (c *Cache) Free() {
	for i := range c.K {
		c.K[i].MustDrop()
		c.V[i].MustDrop()
	}
	c.K, c.V = nil, nil
}

// Forward runs the transformer on inputs_embeds [B, T, E] and returns the
// final hidden states [B, T, E] (after ln_f). mask is HuggingFace's
// attention_mask [B, past+T] of 1 (attend) and 0 (padding), or nil. With a
// cache the new positions follow the cached ones and are appended to it.
// embeds and mask are not freed.
func (m *Model) Forward(embeds, mask *ts.Tensor, cache *Cache, train bool) (*ts.Tensor, error) {
	shape := embeds.MustSize()
	if len(shape) != 3 || shape[2] != m.Cfg.NEmbd {
		return nil, fmt.Errorf("gpt2: inputs_embeds has shape %v, want [batch, seq, %d]", shape, m.Cfg.NEmbd)
	}
	b, t := shape[0], shape[1]
	past := int64(0)
	if cache != nil {
		past = cache.Len
		if past+t > cache.MaxLen {
			return nil, fmt.Errorf("gpt2: %d positions exceed the cache's %d", past+t, cache.MaxLen)
		}
		if cache.K[0].MustSize()[0] != b {
			return nil, fmt.Errorf("gpt2: batch %d does not match the cache's %d", b, cache.K[0].MustSize()[0])
		}
	}
	if past+t > m.Cfg.NPositions {
		return nil, fmt.Errorf("gpt2: %d positions exceed n_positions %d", past+t, m.Cfg.NPositions)
	}
	dev := embeds.MustDevice()
	if m.fastStep(t, mask, cache, train, dev) {
		return m.stepRows(embeds, cache)
	}
	pos := ts.MustArangeStart(ts.IntScalar(past), ts.IntScalar(past+t), gotch.Int64, dev)
	pe := ts.MustEmbedding(m.WPE, pos, -1, false, false)
	pos.MustDrop()
	x := embeds.MustAdd(pe, false)
	pe.MustDrop()
	x = nn.Dropout(x, m.Cfg.EmbdPdrop, train)

	bias := attentionBias(b, t, past, mask, dev)
	for i, blk := range m.Blocks {
		var ck, cv *ts.Tensor
		if cache != nil {
			ck, cv = cache.K[i], cache.V[i]
		}
		nx := blk.forward(x, bias, ck, cv, past, m.Cfg, train)
		x.MustDrop()
		x = nx
	}
	if bias != nil {
		bias.MustDrop()
	}
	if cache != nil {
		cache.Len = past + t
	}
	out := m.LnF.Forward(x)
	x.MustDrop()
	return out, nil
}

// Logits projects hidden states [B, T, E] onto the vocabulary with the tied
// LM head: [B, T, vocab]. hidden is not freed.
func (m *Model) Logits(hidden *ts.Tensor) *ts.Tensor {
	shape := hidden.MustSize()
	if m.Head != nil {
		return m.Head.Forward(hidden, nil)
	}
	if m.store.Autocast() != gotch.Float {
		wt := m.WTE.MustT(false)
		defer wt.MustDrop()
		return m.store.Matmul(hidden, wt)
	}
	if shape[0]*shape[1] == 1 {
		// One position (batch-1 decoding): gemv over wte is about twice as
		// fast as a one-row gemm, which packs the whole matrix first.
		v := hidden.MustReshape([]int64{m.Cfg.NEmbd}, false)
		y := m.WTE.MustMv(v, false)
		v.MustDrop()
		return y.MustView([]int64{1, 1, m.Cfg.VocabSize}, true)
	}
	if n := shape[0] * shape[1]; n <= nn.SmallRows {
		// A few positions (beam search's beams): the small-batch kernel
		// streams wte once, where gemm cost about three reads of it.
		h := hidden.MustReshape([]int64{n, m.Cfg.NEmbd}, false)
		y := nn.MatmulT(h, m.WTE)
		h.MustDrop()
		if y != nil {
			return y.MustView([]int64{shape[0], shape[1], m.Cfg.VocabSize}, true)
		}
	}
	wt := m.WTE.MustT(false)
	defer wt.MustDrop()
	return hidden.MustMatmul(wt, false)
}

// attentionBias builds the additive mask [B or 1, 1, T, past+T]: causal
// positions and padded keys get float32's lowest value, as HuggingFace does.
// It returns nil when nothing needs masking (one new position, no padding).
func attentionBias(b, t, past int64, mask *ts.Tensor, dev gotch.Device) *ts.Tensor {
	s := past + t
	var bias *ts.Tensor
	if t > 1 {
		// Key j is visible to query i when j <= past+i.
		ones := ts.MustOnes([]int64{t, s}, gotch.Bool, dev)
		hidden := ones.MustTriu(past+1, true)
		zeros := ts.MustZeros([]int64{t, s}, gotch.Float, dev)
		bias = zeros.MustMaskedFill(hidden, ts.FloatScalar(-math.MaxFloat32), true)
		hidden.MustDrop()
		bias = bias.MustView([]int64{1, 1, t, s}, true)
	}
	if mask != nil {
		// (1 - mask) * lowest, broadcast over heads and queries.
		mf := mask.MustTotype(gotch.Float, false)
		inv := mf.MustRsubScalar(ts.FloatScalar(1), true) // 1 - mask
		pad := inv.MustMulScalar(ts.FloatScalar(-math.MaxFloat32), true).MustView([]int64{b, 1, 1, s}, true)
		if bias == nil {
			bias = pad
		} else {
			nb := bias.MustAdd(pad, true)
			pad.MustDrop()
			bias = nb
		}
	}
	return bias
}

func (blk *Block) forward(x, bias, ck, cv *ts.Tensor, past int64, cfg Config, train bool) *ts.Tensor {
	shape := x.MustSize()
	b, t := shape[0], shape[1]
	hd := blk.width / blk.heads

	h := blk.Ln1.Forward(x)
	qkv := blk.Attn.Forward(h)
	h.MustDrop()
	parts := qkv.MustSplit(blk.width, 2, true)
	heads := func(z *ts.Tensor) *ts.Tensor {
		return z.MustView([]int64{b, t, blk.heads, hd}, true).MustTranspose(1, 2, true)
	}
	q, k, v := heads(parts[0]), heads(parts[1]), heads(parts[2])
	if ck != nil {
		// Write the new keys/values into the preallocated cache and attend
		// over everything cached so far.
		dk := ck.MustNarrow(2, past, t, false)
		dk.Copy_(k)
		dk.MustDrop()
		dv := cv.MustNarrow(2, past, t, false)
		dv.Copy_(v)
		dv.MustDrop()
		k.MustDrop()
		v.MustDrop()
		k = ck.MustNarrow(2, 0, past+t, false)
		v = cv.MustNarrow(2, 0, past+t, false)
	}
	kt := k.MustTranspose(2, 3, true)
	scores := blk.store.Matmul(q, kt)
	q.MustDrop()
	kt.MustDrop()
	scores = scores.MustDivScalar(ts.FloatScalar(math.Sqrt(float64(hd))), true)
	if bias != nil {
		scores = scores.MustAdd(bias, true)
	}
	probs := scores.MustSoftmax(-1, gotch.Float, true)
	probs = nn.Dropout(probs, cfg.AttnPdrop, train)
	ctx := blk.store.Matmul(probs, v)
	probs.MustDrop()
	v.MustDrop()
	ctx = ctx.MustTranspose(1, 2, true).MustReshape([]int64{b, t, blk.width}, true)
	a := blk.Proj.Forward(ctx)
	ctx.MustDrop()
	a = nn.Dropout(a, cfg.ResidPdrop, train)
	x1 := x.MustAdd(a, false)
	a.MustDrop()

	h2 := blk.Ln2.Forward(x1)
	f := blk.Fc.Forward(h2)
	h2.MustDrop()
	f = activation(f, cfg.Activation)
	o := blk.MlpProj.Forward(f)
	f.MustDrop()
	o = nn.Dropout(o, cfg.ResidPdrop, train)
	out := x1.MustAdd(o, true)
	o.MustDrop()
	return out
}

// activation applies the MLP nonlinearity and frees x.
func activation(x *ts.Tensor, name string) *ts.Tensor {
	switch name {
	case "gelu":
		return x.MustGelu("none", true)
	case "relu":
		return x.MustRelu(true)
	default: // gelu_new, gelu_pytorch_tanh: the tanh approximation
		return x.MustGelu("tanh", true)
	}
}
