package generate

import (
	"context"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/sample"
)

// stepwise decodes greedily or by sampling, one token per step for every
// unfinished row. Rows that finish leave the batch (and the cache), so a
// batch costs what its unfinished captions cost.
func stepwise(ctx context.Context, m *gpt2.Model, prefix *ts.Tensor, opt Options, h Hooks) ([]Result, error) {
	b := prefix.MustSize()[0]
	dev := prefix.MustDevice()
	dec := newDecoder(m, b, prefix.MustSize()[1]+int64(opt.MaxTokens), opt.NoCache, dev)
	defer dec.free()

	results := make([]Result, b)
	active := make([]int, b) // row in the current batch → image index
	for i := range active {
		active[i] = i
	}
	// Row r samples with image active[r]'s generator (seeded Seed + image,
	// or Hooks.Seeds), so results do not depend on which other rows finished.
	proc := sample.New(sample.Config{Greedy: opt.Strategy == Greedy, Temperature: opt.Temperature,
		TopK: opt.TopK, TopP: opt.TopP, Seed: opt.Seed, Seeds: h.Seeds}, int(b))
	logits, err := dec.step(prefix.MustShallowClone())
	if err != nil {
		return nil, err
	}
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			logits.MustDrop()
			return nil, err
		}
		scaled, err := proc.Scale(logits)
		logits.MustDrop()
		if err != nil {
			return nil, err
		}
		logp := scaled.MustLogSoftmax(-1, gotch.Float, false)
		next, err := proc.Next(scaled, active)
		scaled.MustDrop()
		if err != nil {
			logp.MustDrop()
			return nil, err
		}
		idx := int64Tensor(next, dev).MustUnsqueeze(1, true)
		chosen := logp.MustGather(1, idx, false, true)
		lp := chosen.Float64Values()
		chosen.MustDrop()
		idx.MustDrop()

		var keepRows []int64
		var keepTokens []int64
		var stillActive []int
		for r, img := range active {
			tok := int(next[r])
			res := &results[img]
			res.Tokens = append(res.Tokens, tok)
			res.Score += lp[r]
			if h.OnToken != nil {
				h.OnToken(img, tok)
			}
			if isStop(tok, opt.StopTokens) {
				res.Stopped = true
				continue
			}
			if len(res.Tokens) >= opt.MaxTokens {
				continue
			}
			keepRows = append(keepRows, int64(r))
			keepTokens = append(keepTokens, next[r])
			stillActive = append(stillActive, img)
		}
		if len(stillActive) == 0 {
			break
		}
		if len(stillActive) < len(active) {
			k := int64Tensor(keepRows, dev)
			dec.keep(k)
			k.MustDrop()
		}
		active = stillActive
		tok := int64Tensor(keepTokens, dev).MustUnsqueeze(1, true)
		emb := m.Embed(tok)
		tok.MustDrop()
		logits, err = dec.step(emb)
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}
