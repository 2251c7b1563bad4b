// Package generate is the one inference path from prefix embeddings to
// captions: greedy decoding, beam search with the official predict.py
// semantics, and temperature / top-k / top-p sampling, batched over images
// and using GPT-2's key/value cache.
package generate

import (
	"context"
	"fmt"

	"github.com/clipcap/clipcap/internal/torchrt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/gpt2"
)

// Strategy picks the decoding algorithm.
type Strategy string

const (
	Greedy Strategy = "greedy"
	Beam   Strategy = "beam"
	Sample Strategy = "sample"
)

// Options control decoding. The zero value of a field means its default:
// beam 5 (predict.py with use_beam_search, the transformer notebook's
// choice; predict.py's own default is greedy), "." (id 13) stops, 67
// tokens at most.
type Options struct {
	Strategy    Strategy `yaml:"strategy" json:"strategy"`
	BeamSize    int      `yaml:"beam_size" json:"beam_size"`
	MaxTokens   int      `yaml:"max_tokens" json:"max_tokens"`
	StopTokens  []int    `yaml:"stop_tokens" json:"stop_tokens"` // nil = [13] ("."); empty non-nil = none
	Temperature float64  `yaml:"temperature" json:"temperature"` // 0 = 1
	TopK        int      `yaml:"top_k" json:"top_k"`             // sampling only; 0 = off
	TopP        float64  `yaml:"top_p" json:"top_p"`             // sampling only; 0 = off
	Seed        int64    `yaml:"seed" json:"seed"`
	// NoCache re-runs GPT-2 over the whole sequence for every token, as
	// predict.py does. Only for checking the cache and for comparisons.
	NoCache bool `yaml:"-" json:"-"`
	// Precision is the weights' format for inference (fp32, bf16, int8),
	// applied when a model directory is loaded, not by decoding.
	Precision string `yaml:"precision,omitempty" json:"precision,omitempty"`
}

// DefaultStop is GPT-2's id of ".", predict.py's stop token.
const DefaultStop = 13

// WithDefaults fills unset fields.
func (o Options) WithDefaults() Options {
	if o.Strategy == "" {
		o.Strategy = Beam
	}
	if o.BeamSize <= 0 {
		o.BeamSize = 5
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 67
	}
	if o.StopTokens == nil {
		o.StopTokens = []int{DefaultStop}
	}
	if o.Temperature <= 0 {
		o.Temperature = 1
	}
	return o
}

// Result is one generated caption.
type Result struct {
	Tokens []int // generated ids, the stop token included when one ended it
	// Score is the sum of the tokens' log-probabilities (greedy, sample) or
	// beam search's length-normalized score.
	Score   float64
	Stopped bool // ended by a stop token rather than the length limit
	// Alternatives are beam search's other final beams, best first (empty
	// for greedy and sampling): Result plus these are the n-best list.
	Alternatives []Result
}

// Hooks are per-call extras that do not change which caption a row gets.
type Hooks struct {
	// OnToken, when set, sees each row's tokens as they are chosen
	// (greedy, sample): one call per token, in order, the stop token
	// included. Beam search only knows its best beam at the end, so it calls
	// OnToken with the final best caption's tokens once the search is done.
	OnToken func(row, token int)
	// Seeds, when set, is each row's sampling seed; by default row r uses
	// Options.Seed + r. Callers that batch unrelated requests give each its
	// own so a request's samples do not depend on its neighbours.
	Seeds []int64
}

// Generate decodes one caption per prefix row. prefix is [B, L, E] (float32,
// not freed).
func Generate(m *gpt2.Model, prefix *ts.Tensor, opt Options) ([]Result, error) {
	return GenerateWith(context.Background(), m, prefix, opt, Hooks{})
}

// GenerateContext is Generate that gives up between two decoding steps once
// ctx is done, returning ctx.Err(): a server stops working for a client
// that timed out or went away.
func GenerateContext(ctx context.Context, m *gpt2.Model, prefix *ts.Tensor, opt Options) ([]Result, error) {
	return GenerateWith(ctx, m, prefix, opt, Hooks{})
}

// GenerateWith is GenerateContext with per-token callbacks and per-row seeds.
func GenerateWith(ctx context.Context, m *gpt2.Model, prefix *ts.Tensor, opt Options, h Hooks) ([]Result, error) {
	opt = opt.WithDefaults()
	shape := prefix.MustSize()
	if len(shape) != 3 || shape[2] != m.Cfg.NEmbd {
		return nil, fmt.Errorf("generate: prefix has shape %v, want [batch, length, %d]", shape, m.Cfg.NEmbd)
	}
	if int64(opt.MaxTokens)+shape[1] > m.Cfg.NPositions {
		return nil, fmt.Errorf("generate: prefix %d + %d tokens exceeds GPT-2's %d positions", shape[1], opt.MaxTokens, m.Cfg.NPositions)
	}
	if shape[0] == 0 {
		return nil, nil
	}
	if h.Seeds != nil && int64(len(h.Seeds)) != shape[0] {
		return nil, fmt.Errorf("generate: %d seeds for %d rows", len(h.Seeds), shape[0])
	}
	var out []Result
	var err error
	torchrt.NoGrad(func() {
		switch opt.Strategy {
		case Greedy, Sample:
			out, err = stepwise(ctx, m, prefix, opt, h)
		case Beam:
			out, err = beamSearch(ctx, m, prefix, opt)
			if err == nil && h.OnToken != nil {
				for r, res := range out {
					for _, t := range res.Tokens {
						h.OnToken(r, t)
					}
				}
			}
		default:
			err = fmt.Errorf("generate: unknown strategy %q (greedy, beam or sample)", opt.Strategy)
		}
	})
	return out, err
}

// decoder runs GPT-2 one step at a time, with or without the cache.
type decoder struct {
	m     *gpt2.Model
	cache *gpt2.Cache
	seq   *ts.Tensor // all embeddings so far, only without the cache
	dev   gotch.Device
}

func newDecoder(m *gpt2.Model, batch, maxLen int64, noCache bool, dev gotch.Device) *decoder {
	d := &decoder{m: m, dev: dev}
	if !noCache {
		d.cache = m.NewCache(batch, maxLen, dev)
	}
	return d
}

// step feeds embeddings [B, T, E] and returns the last position's logits
// [B, vocab]. embeds is freed.
func (d *decoder) step(embeds *ts.Tensor) (*ts.Tensor, error) {
	input := embeds
	if d.cache == nil {
		if d.seq == nil {
			d.seq = embeds
		} else {
			s := ts.MustCat([]*ts.Tensor{d.seq, embeds}, 1)
			d.seq.MustDrop()
			embeds.MustDrop()
			d.seq = s
		}
		input = d.seq
	}
	hidden, err := d.m.Forward(input, nil, d.cache, false)
	if d.cache != nil {
		embeds.MustDrop()
	}
	if err != nil {
		return nil, err
	}
	t := hidden.MustSize()[1]
	last := hidden.MustNarrow(1, t-1, 1, true)
	logits := d.m.Logits(last)
	last.MustDrop()
	return logits.MustSqueezeDim(1, true), nil
}

// keep restricts the decoder to rows idx ([B'] int64 on the device).
func (d *decoder) keep(idx *ts.Tensor) {
	if d.cache != nil {
		d.cache.Reorder(idx)
		return
	}
	s := d.seq.MustIndexSelect(0, idx, true)
	d.seq = s
}

func (d *decoder) free() {
	if d.cache != nil {
		d.cache.Free()
	}
	if d.seq != nil {
		d.seq.MustDrop()
	}
}

func isStop(tok int, stops []int) bool {
	for _, s := range stops {
		if tok == s {
			return true
		}
	}
	return false
}

func int64Tensor(v []int64, dev gotch.Device) *ts.Tensor {
	t := ts.MustOfSlice(v)
	if dev.IsCuda() { // a CPU tensor's device reads {CPU 1}, never equal to gotch.CPU
		return t.MustTo(dev, true)
	}
	return t
}
