package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/sugarme/gotch"
	"gopkg.in/yaml.v3"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
)

// markGiven records the top-level keys of a YAML config file.
func (c *Config) markGiven(data []byte) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return
	}
	m := root.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		c.markKey(m[i].Value)
	}
}

func (c *Config) markKey(key string) {
	if c.given == nil {
		c.given = map[string]bool{}
	}
	c.given[key] = true
}

// isSet says whether key was given (file or --set) or, for configs built in
// code, differs from its default.
func (c Config) isSet(key string) bool {
	if c.given[key] {
		return true
	}
	return !reflect.DeepEqual(field(c, key), field(Default(), key))
}

func field(c Config, key string) any {
	v := reflect.ValueOf(c)
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("yaml") == key {
			return v.Field(i).Interface()
		}
	}
	return nil
}

// initDir resolves init_from to a model directory: a model directory itself
// (an imported official checkpoint, a checkpoint of a run), or a run
// directory, which means its latest checkpoint.
func (c Config) initDir() (string, error) {
	dir := c.InitFrom
	if caption.IsReleased(dir) {
		// A released model by name (clipcap-coco, ...): downloaded and
		// imported on first use, verified afterwards.
		d, err := caption.ResolveModel(context.Background(), dir, caption.ResolveOptions{})
		if err != nil {
			return "", fmt.Errorf("init_from: %w", err)
		}
		return d, nil
	}
	// A run dir has a config.yaml too (the training config): look for
	// its latest pointer first.
	if _, err := os.Stat(filepath.Join(dir, LatestFile)); err == nil {
		d, err := LatestCheckpoint(dir)
		if err != nil {
			return "", fmt.Errorf("init_from: %w", err)
		}
		return d, nil
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ConfigFile)); err == nil {
		return dir, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("init_from: %w", err)
	}
	return "", fmt.Errorf("init_from: %s is neither a model directory (no %s) nor a run directory (no %s)", dir, checkpoint.ConfigFile, LatestFile)
}

// resolveInitFrom is resolveInit against the data key's feature store.
func (c Config) resolveInitFrom() (Config, error) {
	if c.InitFrom == "" {
		return c, nil
	}
	st, err := featstore.Open(c.Data)
	if err != nil {
		return c, err
	}
	defer st.Close()
	return c.resolveInit(st.Dim(), st.Manifest.CLIPModel)
}

// resolveInit applies init_from: the model keys (mapper type and sizes,
// prefix lengths, prefix normalization, GPT-2) come from the model
// directory, and a key set to something else is an error naming it, as is
// a store of another width or CLIP model. The returned config holds the
// model's values, so the run's saved config describes what it trains. The
// tokenizer defaults to the one the model directory carries.
func (c Config) resolveInit(storeDim int, storeCLIP string) (Config, error) {
	if c.InitFrom == "" {
		return c, nil
	}
	dir, err := c.initDir()
	if err != nil {
		return c, err
	}
	dc, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		return c, fmt.Errorf("init_from: %w", err)
	}
	mp := dc.Model.Mapper
	conflict := func(key string, set, model any) error {
		return fmt.Errorf("%s: %v conflicts with init_from %s, whose model has %v; remove the key (the model decides it) or set it to %v",
			key, set, dir, model, model)
	}
	check := func(key string, set, model any) error {
		if c.isSet(key) && !reflect.DeepEqual(set, model) {
			return conflict(key, set, model)
		}
		return nil
	}
	if err := check("mapping_type", c.MappingType, string(mp.Kind)); err != nil {
		return c, err
	}
	if err := check("prefix_length", c.PrefixLength, mp.PrefixLength); err != nil {
		return c, err
	}
	// The MLP mapper has neither key; train.py accepts them for it too.
	if mp.Kind == "transformer" {
		if err := check("prefix_length_clip", c.PrefixLengthClip, mp.ClipLength); err != nil {
			return c, err
		}
		if err := check("num_layers", c.NumLayers, mp.NumLayers); err != nil {
			return c, err
		}
	}
	if err := check("normalize_prefix", c.NormalizePrefix, dc.Model.NormalizePrefix); err != nil {
		return c, err
	}
	if c.GPT2Random {
		return c, fmt.Errorf("gpt2_random: true conflicts with init_from %s, which provides GPT-2's weights; remove the key", dir)
	}
	if c.isSet("gpt2_config") || c.isSet("gpt2") {
		// gpt2 may still name a preset of the model's sizes (the presets
		// in configs/ do); weights files and other sizes conflict.
		key := "gpt2_config"
		if !c.isSet("gpt2_config") {
			key = "gpt2"
			if _, preset := gpt2.Presets[c.GPT2]; !preset {
				return c, fmt.Errorf("gpt2: %q conflicts with init_from %s, which provides GPT-2's weights; remove the key", c.GPT2, dir)
			}
		}
		g, err := c.ResolveGPT2()
		if err != nil {
			return c, err
		}
		if !sameGPT2Shape(g, dc.Model.GPT2) {
			return c, conflict(key, gpt2Shape(g), gpt2Shape(dc.Model.GPT2))
		}
	}
	if int64(storeDim) != mp.ClipDim {
		return c, fmt.Errorf("init_from: the model maps %d-wide CLIP embeddings but data %s holds %d-wide ones", mp.ClipDim, c.Data, storeDim)
	}
	if dc.CLIP.Name != "" && storeCLIP != "" && dc.CLIP.Name != storeCLIP {
		return c, fmt.Errorf("init_from: the model was trained on %s embeddings but data %s holds %s ones", dc.CLIP.Name, c.Data, storeCLIP)
	}
	c.InitFrom = dir
	c.MappingType, c.PrefixLength, c.NormalizePrefix = string(mp.Kind), mp.PrefixLength, dc.Model.NormalizePrefix
	if mp.Kind == "transformer" {
		c.PrefixLengthClip, c.NumLayers = mp.ClipLength, mp.NumLayers
	}
	if c.Tokenizer == "" {
		if _, err := os.Stat(filepath.Join(dir, checkpoint.VocabFile)); err == nil {
			c.Tokenizer = dir
		}
	}
	return c, nil
}

func gpt2Shape(g gpt2.Config) string {
	return fmt.Sprintf("GPT-2 n_embd=%d n_layer=%d n_head=%d n_positions=%d vocab_size=%d n_inner=%d",
		g.NEmbd, g.NLayer, g.NHead, g.NPositions, g.VocabSize, g.Inner())
}

func sameGPT2Shape(a, b gpt2.Config) bool { return gpt2Shape(a) == gpt2Shape(b) }

// newFromInit builds the run's model from the init_from directory: its
// architecture and weights, with this run's dropout and freezing.
func (c Config) newFromInit(clipDim int64, dev gotch.Device) (*clipcap.Model, error) {
	dir, err := c.initDir()
	if err != nil {
		return nil, err
	}
	dc, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("init_from: %w", err)
	}
	if dc.Model.Mapper.ClipDim != clipDim {
		return nil, fmt.Errorf("init_from: the model maps %d-wide CLIP embeddings, the data %d-wide ones", dc.Model.Mapper.ClipDim, clipDim)
	}
	mc := dc.Model
	mc.FreezeGPT2 = c.OnlyPrefix
	if mc.GPT2, err = c.withDropout(mc.GPT2); err != nil {
		return nil, err
	}
	m, err := checkpoint.LoadAs(dir, mc, dev)
	if err != nil {
		return nil, fmt.Errorf("init_from: %w", err)
	}
	return m, nil
}

// checkVocab rejects a tokenizer with ids the model has no embedding for.
func checkVocab(tokVocab int, m *clipcap.Model, tokenizerKey string) error {
	if v := m.Cfg.GPT2.VocabSize; int64(tokVocab) > v {
		return fmt.Errorf("tokenizer: %q has %d tokens but the model's GPT-2 embeds only %d", tokenizerKey, tokVocab, v)
	}
	return nil
}
