package train

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// Device resolves the device key. "cuda" is an error, not a silent CPU
// fallback, when libtorch was built without CUDA.
func Device(name string) (gotch.Device, error) {
	switch name {
	case "", "cpu":
		return gotch.CPU, nil
	case "cuda":
		d := gotch.CudaIfAvailable()
		if !d.IsCuda() {
			return d, fmt.Errorf("device: cuda requested but this libtorch has no CUDA device (run scripts/setup.sh with LIBTORCH pointing at a CUDA libtorch; see the README's Install section)")
		}
		return d, nil
	}
	return gotch.CPU, fmt.Errorf("device: %q is not cpu or cuda", name)
}

// ResolveGPT2 resolves gpt2_config: an HF config.json path, a preset name,
// or "preset:key=value,..." for small test and demo models (keys are
// config.json's: n_embd, n_layer, n_head, n_positions, vocab_size, n_inner).
// When gpt2_config is empty it comes from the gpt2 key: a preset name, or
// the config.json beside the HF weights.
func (c Config) ResolveGPT2() (gpt2.Config, error) {
	spec := c.GPT2Config
	if spec == "" {
		if p, ok := gpt2.Presets[c.GPT2]; ok {
			return c.withDropout(p)
		}
		dir := c.GPT2
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			dir = filepath.Dir(dir)
		}
		g, err := checkpoint.ReadGPT2Config(filepath.Join(dir, "config.json"))
		if err != nil {
			return g, fmt.Errorf("gpt2_config: not set and %w", err)
		}
		return c.withDropout(g)
	}
	name, over, _ := strings.Cut(spec, ":")
	if p, ok := gpt2.Presets[name]; ok {
		if over != "" {
			for _, kv := range strings.Split(over, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return p, fmt.Errorf("gpt2_config: %q: %q is not an integer", k, v)
				}
				switch k {
				case "n_embd":
					p.NEmbd = n
				case "n_layer":
					p.NLayer = n
				case "n_head":
					p.NHead = n
				case "n_positions":
					p.NPositions = n
				case "vocab_size":
					p.VocabSize = n
				case "n_inner":
					p.NInner = n
				default:
					return p, fmt.Errorf("gpt2_config: unknown size key %q (n_embd, n_layer, n_head, n_positions, vocab_size, n_inner)", k)
				}
			}
			if err := p.Validate(); err != nil {
				return p, fmt.Errorf("gpt2_config: %w", err)
			}
		}
		return c.withDropout(p)
	}
	g, err := checkpoint.ReadGPT2Config(spec)
	if err != nil {
		return g, fmt.Errorf("gpt2_config: %w", err)
	}
	return c.withDropout(g)
}

func (c Config) withDropout(g gpt2.Config) (gpt2.Config, error) {
	p, err := c.dropout()
	if err != nil {
		return g, err
	}
	if p >= 0 {
		g.ResidPdrop, g.EmbdPdrop, g.AttnPdrop = p, p, p
	}
	return g, nil
}

// ModelConfig is the ClipCap config of a run over CLIP embeddings of width
// clipDim.
func (c Config) ModelConfig(clipDim int64) (clipcap.Config, error) {
	g, err := c.ResolveGPT2()
	if err != nil {
		return clipcap.Config{}, err
	}
	mc := clipcap.Config{
		Mapper: mapper.Config{Kind: mapper.Kind(c.MappingType), ClipDim: clipDim, EmbedDim: g.NEmbd,
			PrefixLength: c.PrefixLength},
		GPT2: g, NormalizePrefix: c.NormalizePrefix, FreezeGPT2: c.OnlyPrefix,
	}
	if c.MappingType == "transformer" {
		mc.Mapper.ClipLength, mc.Mapper.NumLayers = c.PrefixLengthClip, c.NumLayers
	}
	if err := mc.Validate(); err != nil {
		return mc, err
	}
	return mc, nil
}

// NewModel builds the run's initial model: libtorch seeded with seed, the
// mapper randomly initialized, GPT-2 from HF weights unless gpt2_random;
// with init_from, the model directory's model.
func (c Config) NewModel(clipDim int64, dev gotch.Device) (*clipcap.Model, error) {
	if c.InitFrom != "" {
		return c.newFromInit(clipDim, dev)
	}
	mc, err := c.ModelConfig(clipDim)
	if err != nil {
		return nil, err
	}
	ManualSeed(c.Seed)
	m, err := clipcap.New(mc, dev)
	if err != nil {
		return nil, err
	}
	if c.GPT2Random {
		return m, nil
	}
	path := c.GPT2
	if _, preset := gpt2.Presets[c.GPT2]; preset {
		// A preset name means the weights `clipcap download NAME` fetched.
		cache, err := download.CacheDir()
		if err != nil {
			return nil, fmt.Errorf("gpt2: %w", err)
		}
		path = download.ModelDir(cache, c.GPT2)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("gpt2: no weights for %q in %s: run `clipcap download %s`, give an HF GPT-2 directory, or set gpt2_random: true", c.GPT2, path, c.GPT2)
		}
	}
	if err := checkpoint.LoadHFGPT2(m, path); err != nil {
		return nil, fmt.Errorf("gpt2: %w", err)
	}
	return m, nil
}

// LoadTokenizer resolves the tokenizer key and returns the directory to copy
// into model dirs ("" for the byte-level test vocabulary).
func (c Config) LoadTokenizer() (*tokenizer.Tokenizer, string, error) {
	switch c.Tokenizer {
	case "bytelevel":
		t, err := tokenizer.NewByteLevel(nil)
		return t, "", err
	case "":
		t, err := tokenizer.LoadDefault()
		return t, tokenizer.DefaultDir(), err
	}
	t, err := tokenizer.Load(c.Tokenizer)
	return t, c.Tokenizer, err
}
