// Package sample turns next-token logits into token choices: temperature,
// top-k and top-p (nucleus) filtering, greedy argmax, and a seeded random
// generator per sequence. It knows nothing of GPT-2 or captions; generation
// (model/generate) runs the model and asks a Processor for each step's
// tokens, as candle's LogitsProcessor and ollama's sample package do.
package sample

import (
	"fmt"
	"math"
	"math/rand"
	"sort"

	"github.com/sugarme/gotch/ts"
)

// Config selects how tokens are chosen. The zero Temperature means 1.
type Config struct {
	Greedy      bool    // argmax; TopK, TopP and Seed are then unused
	Temperature float64 // logits are divided by it (scores included)
	TopK        int     // keep the k most likely tokens; 0 = off
	TopP        float64 // keep the smallest set reaching this mass; 0 or >= 1 = off
	Seed        int64   // sequence i draws from a generator seeded Seed + i
	// Seeds, when set (one per sequence), replaces Seed + i: a caller that
	// batches unrelated requests gives each sequence its request's seed.
	Seeds []int64
}

// Processor applies a Config to the logits of up to n sequences.
type Processor struct {
	cfg  Config
	rngs []*rand.Rand
}

// New makes a Processor for n sequences.
func New(cfg Config, n int) *Processor {
	if cfg.Temperature <= 0 {
		cfg.Temperature = 1
	}
	p := &Processor{cfg: cfg}
	if !cfg.Greedy {
		p.rngs = make([]*rand.Rand, n)
		for i := range p.rngs {
			seed := cfg.Seed + int64(i)
			if i < len(cfg.Seeds) {
				seed = cfg.Seeds[i]
			}
			p.rngs[i] = rand.New(rand.NewSource(seed))
		}
	}
	return p
}

// Scale returns logits / Temperature as a new tensor (logits is kept).
func (p *Processor) Scale(logits *ts.Tensor) (*ts.Tensor, error) {
	return logits.DivScalar(ts.FloatScalar(p.cfg.Temperature), false)
}

// Next picks one token for each row of scaled logits [rows, V] (from Scale).
// Row r belongs to sequence seqs[r], whose generator it uses, so a
// sequence's draws do not depend on which other sequences are still active.
func (p *Processor) Next(scaled *ts.Tensor, seqs []int) ([]int64, error) {
	if p.cfg.Greedy {
		// predict.py's "greedy" filters with top_p 0.8 and then takes the
		// argmax; the most likely token always survives that filter, so it
		// is the plain argmax.
		am, err := scaled.Argmax([]int64{-1}, false, false)
		if err != nil {
			return nil, err
		}
		defer am.MustDrop()
		return am.Int64Values(), nil
	}
	shape, err := scaled.Size()
	if err != nil {
		return nil, err
	}
	if len(shape) != 2 || int(shape[0]) != len(seqs) {
		return nil, fmt.Errorf("sample: logits of shape %v for %d sequences", shape, len(seqs))
	}
	rows, v := int(shape[0]), int(shape[1])
	c, err := scaled.Contiguous(false)
	if err != nil {
		return nil, err
	}
	vals := make([]float32, rows*v)
	err = c.CopyData(vals, uint(rows*v))
	c.MustDrop()
	if err != nil {
		return nil, err
	}
	out := make([]int64, rows)
	order := make([]int, v)
	probs := make([]float64, v)
	for r := 0; r < rows; r++ {
		if seqs[r] < 0 || seqs[r] >= len(p.rngs) {
			return nil, fmt.Errorf("sample: sequence %d outside the %d this processor was made for", seqs[r], len(p.rngs))
		}
		out[r] = int64(p.draw(vals[r*v:(r+1)*v], order, probs, p.rngs[seqs[r]]))
	}
	return out, nil
}

// draw samples from softmax(row) after top-k and top-p filtering; order and
// probs are scratch space of len(row).
func (p *Processor) draw(row []float32, order []int, probs []float64, rng *rand.Rand) int {
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return row[order[a]] > row[order[b]] })
	n := len(row)
	if p.cfg.TopK > 0 && p.cfg.TopK < n {
		n = p.cfg.TopK
	}
	maxv := float64(row[order[0]])
	var sum float64
	for i := 0; i < n; i++ {
		probs[i] = math.Exp(float64(row[order[i]]) - maxv)
		sum += probs[i]
	}
	if p.cfg.TopP > 0 && p.cfg.TopP < 1 {
		// Keep the smallest prefix whose mass reaches top_p (the first token
		// always stays), as HuggingFace's top-p filter does.
		var cum float64
		for i := 0; i < n; i++ {
			cum += probs[i] / sum
			if cum >= p.cfg.TopP {
				n = i + 1
				break
			}
		}
		sum = 0
		for i := 0; i < n; i++ {
			sum += probs[i]
		}
	}
	u := rng.Float64() * sum
	pick := n - 1
	for i := 0; i < n; i++ {
		u -= probs[i]
		if u < 0 {
			pick = i
			break
		}
	}
	return order[pick]
}
