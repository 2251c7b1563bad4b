package generate

import (
	"context"
	"math"
	"sort"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/gpt2"
)

// beamSearch is predict.py's generate_beam, batched over images: log of the
// softmax, stopped beams extended by token 0 at no cost and no length, scores
// ranked by their mean over the beam's length, all in float32 as torch
// computes them, so the chosen tokens are the original's.
func beamSearch(ctx context.Context, m *gpt2.Model, prefix *ts.Tensor, opt Options) ([]Result, error) {
	b := prefix.MustSize()[0]
	k := int64(opt.BeamSize)
	v := m.Cfg.VocabSize
	dev := prefix.MustDevice()
	dec := newDecoder(m, b, prefix.MustSize()[1]+int64(opt.MaxTokens), opt.NoCache, dev)
	defer dec.free()

	logits, err := dec.step(prefix.MustShallowClone())
	if err != nil {
		return nil, err
	}
	logp := logProbs(logits, opt.Temperature)
	top, idx := logp.MustTopk(k, -1, true, true, true)
	scores := float32s(top) // [b*k] running sums
	first := idx.Int64Values()
	top.MustDrop()
	idx.MustDrop()

	n := int(b * k)
	tokens := make([][]int, n)
	lengths := make([]float32, n)
	stopped := make([]bool, n)
	for i := range tokens {
		tokens[i] = []int{int(first[i])}
		lengths[i] = 1
		stopped[i] = isStop(int(first[i]), opt.StopTokens)
	}
	// Every image's single row becomes k beams.
	rep := make([]int64, n)
	for i := range rep {
		rep[i] = int64(i) / k
	}
	repT := int64Tensor(rep, dev)
	dec.keep(repT)
	repT.MustDrop()

	for step := 1; step < opt.MaxTokens && !all(stopped); step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		last := make([]int64, n)
		for i, t := range tokens {
			last[i] = int64(t[len(t)-1])
		}
		lt := int64Tensor(last, dev).MustUnsqueeze(1, true)
		emb := m.Embed(lt)
		lt.MustDrop()
		logits, err := dec.step(emb)
		if err != nil {
			return nil, err
		}
		logp := logProbs(logits, opt.Temperature)
		// Stopped beams: -inf everywhere but token 0, which adds 0.
		stopMask := boolColumn(stopped, dev)
		logp = logp.MustMaskedFill(stopMask, ts.FloatScalar(math.Inf(-1)), true)
		col0 := logp.MustNarrow(1, 0, 1, false)
		col0.MustMaskedFill_(stopMask, ts.FloatScalar(0))
		col0.MustDrop()
		stopMask.MustDrop()

		for i := range lengths {
			if !stopped[i] {
				lengths[i]++
			}
		}
		sc := floatColumn(scores, dev)
		ln := floatColumn(lengths, dev)
		sum := logp.MustAdd(sc, true)
		avg := sum.MustDiv(ln, true).MustView([]int64{b, k * v}, true)
		sc.MustDrop()
		ln.MustDrop()
		topAvg, topIdx := avg.MustTopk(k, -1, true, true, true)
		avgs := float32s(topAvg)
		flat := topIdx.Int64Values()
		topAvg.MustDrop()
		topIdx.MustDrop()

		newTokens := make([][]int, n)
		newLengths := make([]float32, n)
		newStopped := make([]bool, n)
		newScores := make([]float32, n)
		parents := make([]int64, n)
		for i := 0; i < n; i++ {
			img := int64(i) / k
			src := img*k + flat[i]/v
			tok := int(flat[i] % v)
			parents[i] = src
			newTokens[i] = append(append(make([]int, 0, len(tokens[src])+1), tokens[src]...), tok)
			newLengths[i] = lengths[src]
			newScores[i] = avgs[i] * newLengths[i] // float32, as torch
			newStopped[i] = stopped[src] || isStop(tok, opt.StopTokens)
		}
		pt := int64Tensor(parents, dev)
		dec.keep(pt)
		pt.MustDrop()
		tokens, lengths, stopped, scores = newTokens, newLengths, newStopped, newScores
	}

	results := make([]Result, b)
	for img := 0; img < int(b); img++ {
		type cand struct {
			score float32
			i     int
		}
		cands := make([]cand, k)
		for j := 0; j < int(k); j++ {
			i := img*int(k) + j
			cands[j] = cand{scores[i] / lengths[i], i}
		}
		sort.SliceStable(cands, func(a, c int) bool { return cands[a].score > cands[c].score })
		ranked := make([]Result, k)
		for j, c := range cands {
			toks := tokens[c.i][:int(lengths[c.i])]
			ranked[j] = Result{
				Tokens:  append([]int(nil), toks...),
				Score:   float64(c.score),
				Stopped: isStop(toks[len(toks)-1], opt.StopTokens),
			}
		}
		results[img] = ranked[0]
		results[img].Alternatives = ranked[1:]
	}
	return results, nil
}

// logProbs is predict.py's logits.softmax(-1).log() after temperature; it
// frees logits.
func logProbs(logits *ts.Tensor, temperature float64) *ts.Tensor {
	if temperature != 1 {
		logits = logits.MustDivScalar(ts.FloatScalar(temperature), true)
	}
	return logits.MustSoftmax(-1, gotch.Float, true).MustLog(true)
}

func float32s(t *ts.Tensor) []float32 {
	c := t.MustContiguous(false).MustView([]int64{-1}, true)
	defer c.MustDrop()
	out := make([]float32, c.Numel())
	c.MustCopyData(out, uint(len(out)))
	return out
}

func floatColumn(v []float32, dev gotch.Device) *ts.Tensor {
	t := ts.MustOfSlice(v).MustView([]int64{int64(len(v)), 1}, true)
	if dev.IsCuda() {
		return t.MustTo(dev, true)
	}
	return t
}

func boolColumn(v []bool, dev gotch.Device) *ts.Tensor {
	t := ts.MustOfSlice(v).MustView([]int64{int64(len(v)), 1}, true)
	if dev.IsCuda() {
		return t.MustTo(dev, true)
	}
	return t
}

func all(v []bool) bool {
	for _, x := range v {
		if !x {
			return false
		}
	}
	return true
}
