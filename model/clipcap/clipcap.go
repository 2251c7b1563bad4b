// Package clipcap is the ClipCap model: a mapper turns a CLIP image embedding
// into prefix embeddings that GPT-2 continues as a caption. Parameter names
// are the official repository's (clip_project.*, gpt.transformer.*).
package clipcap

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// Config describes a ClipCap model: what config.yaml's `model` section holds.
type Config struct {
	Mapper          mapper.Config `yaml:"mapper"`
	GPT2            gpt2.Config   `yaml:"gpt2"`
	NormalizePrefix bool          `yaml:"normalize_prefix"`
	// FreezeGPT2 is the transformer variant's training mode: GPT-2 gets no
	// gradients and stays in eval mode (no dropout); only the mapper trains.
	FreezeGPT2 bool `yaml:"freeze_gpt2"`
}

// Validate checks that the parts fit together.
func (c Config) Validate() error {
	if err := c.Mapper.Validate(); err != nil {
		return err
	}
	if err := c.GPT2.Validate(); err != nil {
		return err
	}
	if c.Mapper.EmbedDim != c.GPT2.NEmbd {
		return fmt.Errorf("clipcap: mapper embed_dim %d differs from GPT-2's n_embd %d", c.Mapper.EmbedDim, c.GPT2.NEmbd)
	}
	return nil
}

// Model is ClipCaptionModel (or ClipCaptionPrefix when GPT-2 is frozen).
type Model struct {
	Cfg    Config
	Store  *nn.Store
	Mapper mapper.Mapper
	GPT    *gpt2.Model
}

// New builds a randomly initialized model on dev.
func New(cfg Config, dev gotch.Device) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	store := nn.NewStore(dev)
	root := store.Root()
	g, err := gpt2.New(root.Sub("gpt"), cfg.GPT2)
	if err != nil {
		return nil, err
	}
	mp, err := mapper.New(root.Sub("clip_project"), cfg.Mapper)
	if err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg, Store: store, Mapper: mp, GPT: g}
	if cfg.FreezeGPT2 {
		store.SetTrainable("gpt", false)
	}
	return m, nil
}

// PrefixLength is L, the number of prefix positions.
func (m *Model) PrefixLength() int64 { return m.Cfg.Mapper.PrefixLength }

// Prefix maps CLIP embeddings [B, D] to prefix embeddings [B, L, E],
// L2-normalizing them first when the model was trained that way.
func (m *Model) Prefix(clip *ts.Tensor, train bool) (*ts.Tensor, error) {
	shape := clip.MustSize()
	if len(shape) != 2 || shape[1] != m.Cfg.Mapper.ClipDim {
		return nil, fmt.Errorf("clipcap: CLIP embedding has shape %v, the model expects [batch, %d]", shape, m.Cfg.Mapper.ClipDim)
	}
	x := clip
	if clip.DType() != gotch.Float {
		x = clip.MustTotype(gotch.Float, false)
		defer x.MustDrop()
	}
	if m.Cfg.NormalizePrefix {
		norm := x.MustNormScalaroptDim(ts.FloatScalar(2), []int64{-1}, true, false)
		n := x.MustDiv(norm, false)
		norm.MustDrop()
		defer n.MustDrop()
		x = n
	}
	return m.Mapper.Forward(x, train), nil
}

// gptTraining says whether GPT-2 runs in training mode (dropout) in a
// training step: never when it is frozen.
func (m *Model) gptTraining(train bool) bool { return train && !m.Cfg.FreezeGPT2 }

// Forward computes logits [B, L+T, vocab] for CLIP embeddings [B, D], caption
// tokens [B, T] (int64) and the attention mask [B, T] of the caption (1 for
// real tokens); the prefix positions are always attended.
func (m *Model) Forward(clip, tokens, tokenMask *ts.Tensor, train bool) (*ts.Tensor, error) {
	prefix, err := m.Prefix(clip, train)
	if err != nil {
		return nil, err
	}
	defer prefix.MustDrop()
	text := m.GPT.Embed(tokens)
	embeds := ts.MustCat([]*ts.Tensor{prefix, text}, 1)
	text.MustDrop()
	defer embeds.MustDrop()
	var mask *ts.Tensor
	if tokenMask != nil {
		if mask, err = m.attentionMask(tokenMask, tokens.MustSize()[0], tokens.MustDevice()); err != nil {
			return nil, err
		}
		defer mask.MustDrop()
	}
	hidden, err := m.GPT.Forward(embeds, mask, nil, m.gptTraining(train))
	if err != nil {
		return nil, err
	}
	logits := m.GPT.Logits(hidden)
	hidden.MustDrop()
	return logits, nil
}

// Loss is the captioning loss: cross-entropy of the logits at positions
// L-1 … L+T-2 against tokens [B, T], averaged over real tokens. Padding is
// excluded through tokenMask (nil: every token is real), not by token id: the
// original ignores id 0, which is also GPT-2's "!" and so never learns it.
//
// Only the hidden states that predict real tokens go through the tied LM
// head. Projecting every position (prefix and padding included) onto the
// 50257-word vocabulary, as Forward does, was most of the forward pass for
// the transformer variant's 40 prefix positions; the values and gradients
// are the same (tested against Forward's logits).
func (m *Model) Loss(clip, tokens, tokenMask *ts.Tensor, train bool) (*ts.Tensor, error) {
	shape := tokens.MustSize()
	b, t := shape[0], shape[1]
	dev := tokens.MustDevice()
	if tokenMask == nil {
		ones, err := ts.Ones([]int64{b, t}, gotch.Float, dev)
		if err != nil {
			return nil, err
		}
		defer ones.MustDrop()
		tokenMask = ones
	}
	prefix, err := m.Prefix(clip, train)
	if err != nil {
		return nil, err
	}
	text := m.GPT.Embed(tokens)
	embeds, err := ts.Cat([]*ts.Tensor{prefix, text}, 1)
	prefix.MustDrop()
	text.MustDrop()
	if err != nil {
		return nil, err
	}
	defer embeds.MustDrop()
	mask, err := m.attentionMask(tokenMask, b, dev)
	if err != nil {
		return nil, err
	}
	defer mask.MustDrop()
	hidden, err := m.GPT.Forward(embeds, mask, nil, m.gptTraining(train))
	if err != nil {
		return nil, err
	}
	defer hidden.MustDrop()

	// Real token k sits at flat index idx = i·T+j of tokens and is predicted
	// by hidden state i·(L+T) + L-1 + j = idx + i·L + L-1.
	flatMask, err := tokenMask.Reshape([]int64{-1}, false)
	if err != nil {
		return nil, err
	}
	nz, err := flatMask.Nonzero(true)
	if err != nil {
		return nil, err
	}
	idx, err := nz.Reshape([]int64{-1}, true)
	if err != nil {
		return nil, err
	}
	defer idx.MustDrop()
	if idx.MustSize()[0] == 0 {
		return nil, fmt.Errorf("clipcap: loss of a batch without caption tokens (every mask entry is 0)")
	}
	L := m.PrefixLength()
	row, err := idx.DivScalarMode(ts.IntScalar(t), "floor", false)
	if err != nil {
		return nil, err
	}
	shift, err := row.MulScalar(ts.IntScalar(L), true)
	if err != nil {
		return nil, err
	}
	pos, err := idx.Add(shift, false)
	shift.MustDrop()
	if err != nil {
		return nil, err
	}
	pos, err = pos.AddScalar(ts.IntScalar(L-1), true)
	if err != nil {
		return nil, err
	}
	defer pos.MustDrop()
	flatTokens, err := tokens.Reshape([]int64{-1}, false)
	if err != nil {
		return nil, err
	}
	target, err := flatTokens.IndexSelect(0, idx, true)
	if err != nil {
		return nil, err
	}
	defer target.MustDrop()
	flat, err := hidden.Reshape([]int64{-1, m.Cfg.GPT2.NEmbd}, false)
	if err != nil {
		return nil, err
	}
	sel, err := flat.IndexSelect(0, pos, true)
	if err != nil {
		return nil, err
	}
	logits := m.GPT.Logits(sel)
	sel.MustDrop()
	defer logits.MustDrop()
	const reductionMean = 1
	return logits.CrossEntropyLoss(target, noWeight, reductionMean, -100, 0, false)
}

// noWeight is the undefined class-weight tensor, made once rather than per step.
var noWeight = ts.NewTensor()

// attentionMask is the GPT-2 attention mask [B, L+T] for a caption mask
// [B, T]: the prefix positions are always attended.
func (m *Model) attentionMask(tokenMask *ts.Tensor, b int64, dev gotch.Device) (*ts.Tensor, error) {
	ones, err := ts.Ones([]int64{b, m.PrefixLength()}, gotch.Float, dev)
	if err != nil {
		return nil, err
	}
	defer ones.MustDrop()
	tm, err := tokenMask.Totype(gotch.Float, false)
	if err != nil {
		return nil, err
	}
	defer tm.MustDrop()
	return ts.Cat([]*ts.Tensor{ones, tm}, 1)
}
