package generate

import (
	"math"
	"math/rand"
	"sort"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/gpt2"
)

// stepwise decodes greedily or by sampling, one token per step for every
// unfinished row. Rows that finish leave the batch (and the cache), so a
// batch costs what its unfinished captions cost.
func stepwise(m *gpt2.Model, prefix *ts.Tensor, opt Options) ([]Result, error) {
	b := prefix.MustSize()[0]
	dev := prefix.MustDevice()
	dec := newDecoder(m, b, prefix.MustSize()[1]+int64(opt.MaxTokens), opt.NoCache, dev)
	defer dec.free()

	results := make([]Result, b)
	active := make([]int, b) // row in the current batch → image index
	rngs := make([]*rand.Rand, b)
	for i := range active {
		active[i] = i
		rngs[i] = rand.New(rand.NewSource(opt.Seed + int64(i)))
	}
	logits, err := dec.step(prefix.MustShallowClone())
	if err != nil {
		return nil, err
	}
	for step := 0; ; step++ {
		scaled := logits.MustDivScalar(ts.FloatScalar(opt.Temperature), true)
		logp := scaled.MustLogSoftmax(-1, gotch.Float, false)
		var next []int64
		if opt.Strategy == Greedy {
			// predict.py's "greedy" filters with top_p 0.8 and then takes the
			// argmax; the most likely token always survives that filter, so
			// it is the plain argmax.
			am := scaled.MustArgmax([]int64{-1}, false, false)
			next = am.Int64Values()
			am.MustDrop()
		} else {
			next = sampleRows(scaled, opt, active, rngs)
		}
		scaled.MustDrop()
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

// sampleRows draws one token per row from softmax(logits) after top-k and
// top-p filtering. Row r uses the generator of image active[r], seeded with
// Seed + image index, so results do not depend on which other rows finished.
func sampleRows(logits *ts.Tensor, opt Options, active []int, rngs []*rand.Rand) []int64 {
	shape := logits.MustSize()
	rows, v := int(shape[0]), int(shape[1])
	c := logits.MustContiguous(false)
	vals := make([]float32, rows*v)
	c.MustCopyData(vals, uint(rows*v))
	c.MustDrop()
	out := make([]int64, rows)
	order := make([]int, v)
	probs := make([]float64, v)
	for r := 0; r < rows; r++ {
		row := vals[r*v : (r+1)*v]
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
		n := v
		if opt.TopK > 0 && opt.TopK < n {
			n = opt.TopK
		}
		maxv := float64(row[order[0]])
		var sum float64
		for i := 0; i < n; i++ {
			probs[i] = math.Exp(float64(row[order[i]]) - maxv)
			sum += probs[i]
		}
		if opt.TopP > 0 && opt.TopP < 1 {
			// Keep the smallest prefix whose mass reaches top_p (the first
			// token always stays), as HuggingFace's top-p filter does.
			var cum float64
			for i := 0; i < n; i++ {
				cum += probs[i] / sum
				if cum >= opt.TopP {
					n = i + 1
					break
				}
			}
			sum = 0
			for i := 0; i < n; i++ {
				sum += probs[i]
			}
		}
		u := rngs[active[r]].Float64() * sum
		pick := n - 1
		for i := 0; i < n; i++ {
			u -= probs[i]
			if u < 0 {
				pick = i
				break
			}
		}
		out[r] = int64(order[pick])
	}
	return out
}
