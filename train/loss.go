package train

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/clipcap"
)

// deviceBatch is a Batch on the training device.
type deviceBatch struct {
	clip, tokens, mask *ts.Tensor
	// pick are the flat positions b·T+j of real tokens in the hidden states
	// [B·(L+T)] that predict them (position L-1+j), target the tokens.
	pick, target *ts.Tensor
	ntokens      int
}

func toDevice(b *Batch, prefixLen int64, dev gotch.Device) *deviceBatch {
	mv := func(t *ts.Tensor) *ts.Tensor {
		if !dev.IsCuda() {
			return t
		}
		return t.MustTo(dev, true)
	}
	seq := prefixLen + int64(b.T)
	var pick, target []int64
	for i := 0; i < b.B; i++ {
		for j := 0; j < b.T; j++ {
			if b.Mask[i*b.T+j] != 0 {
				pick = append(pick, int64(i)*seq+prefixLen-1+int64(j))
				target = append(target, b.Tokens[i*b.T+j])
			}
		}
	}
	return &deviceBatch{
		clip:    mv(ts.MustOfSlice(b.Emb).MustView([]int64{int64(b.B), int64(b.D)}, true)),
		tokens:  mv(ts.MustOfSlice(b.Tokens).MustView([]int64{int64(b.B), int64(b.T)}, true)),
		mask:    mv(ts.MustOfSlice(b.Mask).MustView([]int64{int64(b.B), int64(b.T)}, true)),
		pick:    mv(ts.MustOfSlice(pick)),
		target:  mv(ts.MustOfSlice(target)),
		ntokens: len(pick),
	}
}

func (d *deviceBatch) free() {
	for _, t := range []*ts.Tensor{d.clip, d.tokens, d.mask, d.pick, d.target} {
		t.MustDrop()
	}
}

// noWeight is the undefined class-weight tensor, made once rather than per step.
var noWeight = ts.NewTensor()

// captionLoss equals clipcap.Model.Loss (mean cross-entropy over real
// tokens) but runs the tied LM head only on the hidden states that predict
// real tokens. Model.Loss projects every position, prefix and padding
// included, onto the 50257-word vocabulary: for the transformer variant
// (40 prefix positions) that head was most of the forward pass.
func captionLoss(m *clipcap.Model, d *deviceBatch, train bool) (*ts.Tensor, error) {
	prefix, err := m.Prefix(d.clip, train)
	if err != nil {
		return nil, err
	}
	text := m.GPT.Embed(d.tokens)
	embeds := ts.MustCat([]*ts.Tensor{prefix, text}, 1)
	prefix.MustDrop()
	text.MustDrop()
	shape := d.tokens.MustSize()
	ones := ts.MustOnes([]int64{shape[0], m.PrefixLength()}, gotch.Float, d.mask.MustDevice())
	mask := ts.MustCat([]*ts.Tensor{ones, d.mask}, 1)
	ones.MustDrop()
	hidden, err := m.GPT.Forward(embeds, mask, nil, train && !m.Cfg.FreezeGPT2)
	embeds.MustDrop()
	mask.MustDrop()
	if err != nil {
		return nil, err
	}
	flat := hidden.MustReshape([]int64{-1, m.Cfg.GPT2.NEmbd}, true)
	sel := flat.MustIndexSelect(0, d.pick, true)
	logits := m.GPT.Logits(sel)
	sel.MustDrop()
	const reductionMean = 1
	loss := logits.MustCrossEntropyLoss(d.target, noWeight, reductionMean, -100, 0, true)
	return loss, nil
}
