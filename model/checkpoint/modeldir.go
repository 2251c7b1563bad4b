package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sugarme/gotch"
	"gopkg.in/yaml.v3"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/nn"
)

// File names inside a model directory.
const (
	ConfigFile  = "config.yaml"
	WeightsFile = "model.safetensors"
	VocabFile   = "vocab.json"
	MergesFile  = "merges.txt"
)

// DirConfig is a model directory's config.yaml.
type DirConfig struct {
	Format     int              `yaml:"format"`
	Model      clipcap.Config   `yaml:"model"`
	CLIP       CLIPInfo         `yaml:"clip"`
	Generation generate.Options `yaml:"generation"`
	// WeightsPrecision is bf16 or int8 when model.safetensors stores the
	// GPT-2 and mapper matrices in that form (export --precision; see
	// lowp.go), "" for float32.
	WeightsPrecision string `yaml:"weights_precision,omitempty"`
}

// CLIPInfo says which CLIP encoder produced the embeddings the model was
// trained on, and where its weights are when the directory carries them.
type CLIPInfo struct {
	Name     string `yaml:"name"`              // e.g. ViT-B/32
	EmbedDim int64  `yaml:"embed_dim"`         // must equal the mapper's clip_dim
	Weights  string `yaml:"weights,omitempty"` // file inside the directory, optional
	Random   bool   `yaml:"random,omitempty"`  // seeded random weights (demo), said plainly
	// Heads and Activation of the carried tower's ViT blocks, recorded at
	// import from the config file that came with it: tensor shapes cannot
	// tell them, and the directory holds no config.json.
	Heads      int64  `yaml:"heads,omitempty"`
	Activation string `yaml:"activation,omitempty"`
	// Precision fp32 keeps the tower in float32 when inference runs in
	// bf16 or int8 (by default the tower then computes in bf16): for towers
	// whose embeddings differ between images by less than bf16's error,
	// such as seeded random ones.
	Precision string `yaml:"precision,omitempty"`
}

// DefaultGeneration is what trained model directories decode with: beam 5
// (the original's transformer notebook, use_beam_search=True), stop at
// ".", 67 tokens. predict.py's own default is greedy (OfficialGeneration),
// which imported official checkpoints get.
func DefaultGeneration() generate.Options {
	return generate.Options{Strategy: generate.Beam, BeamSize: 5, MaxTokens: 67, StopTokens: []int{generate.DefaultStop}}
}

// NewDirConfig fills a config for a model.
func NewDirConfig(m *clipcap.Model, clipName string) DirConfig {
	return DirConfig{Format: 1, Model: m.Cfg, CLIP: CLIPInfo{Name: clipName, EmbedDim: m.Cfg.Mapper.ClipDim}, Generation: DefaultGeneration()}
}

// ReadDirConfig parses dir/config.yaml, rejecting unknown keys.
func ReadDirConfig(dir string) (DirConfig, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return DirConfig{}, fmt.Errorf("%s is not a model directory: no %s", dir, ConfigFile)
		}
		return DirConfig{}, err
	}
	var c DirConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if c.Format != 1 {
		return c, fmt.Errorf("%s: format %d is not supported (want 1)", path, c.Format)
	}
	if err := c.Model.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if c.CLIP.EmbedDim != 0 && c.CLIP.EmbedDim != c.Model.Mapper.ClipDim {
		return c, fmt.Errorf("%s: clip.embed_dim %d differs from the mapper's clip_dim %d", path, c.CLIP.EmbedDim, c.Model.Mapper.ClipDim)
	}
	return c, nil
}

// Load reads a model directory onto dev as a float32 model (weights stored
// in bf16 or int8 are dequantized; LoadStored keeps them).
func Load(dir string, dev gotch.Device) (*clipcap.Model, DirConfig, error) {
	cfg, err := ReadDirConfig(dir)
	if err != nil {
		return nil, cfg, err
	}
	m, stored, err := loadAs(dir, cfg.Model, dev, false)
	if err == nil {
		err = checkStored(dir, cfg, stored)
	}
	return m, cfg, err
}

// LoadAs reads the weights of the model directory dir into a model built
// from mc, which must have the directory's shapes: training from a model
// directory changes what does not shape weights (dropout, freezing).
func LoadAs(dir string, mc clipcap.Config, dev gotch.Device) (*clipcap.Model, error) {
	m, _, err := loadAs(dir, mc, dev, false)
	return m, err
}

// loadAs is LoadAs that also returns the stored precision of the
// low-precision matrices, keeping them as the layers' LowP when keep.
func loadAs(dir string, mc clipcap.Config, dev gotch.Device, keep bool) (*clipcap.Model, nn.Precision, error) {
	path := filepath.Join(dir, WeightsFile)
	src, err := tensorfile.OpenSafetensors(path)
	if err != nil {
		return nil, "", err
	}
	defer src.Close()
	sh, err := shapes(src)
	if err != nil {
		return nil, "", err
	}
	if err := checkHeld(mc, sh); err != nil {
		return nil, "", fmt.Errorf("%s: %s declares a model that %w", path, ConfigFile, err)
	}
	m, err := clipcap.New(mc, dev)
	if err != nil {
		return nil, "", err
	}
	layers, err := lowLayers(m)
	if err != nil {
		return nil, "", err
	}
	stored, err := storedPrecision(src, layers)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	rename, consumed := officialName, map[string]bool{}
	if stored != nn.FP32 {
		if consumed, err = loadLow(src, path, layers, dev, keep); err != nil {
			return nil, "", err
		}
		rename = func(n string) string {
			if consumed[n] {
				return ""
			}
			return n
		}
	}
	unused, err := nn.LoadInto(m.Store, src, path, rename, func(n string) bool { return consumed[n] })
	if err != nil {
		return nil, "", err
	}
	unused = slices.DeleteFunc(unused, func(n string) bool { return consumed[n] })
	if len(unused) > 0 {
		return nil, "", fmt.Errorf("%s: tensors the model has no place for: %v", path, head(unused, 5))
	}
	return m, stored, nil
}

// StateDict returns every parameter as raw float32 tensors under the
// official names.
func StateDict(m *clipcap.Model) (map[string]tensorfile.RawTensor, error) {
	return m.Store.StateDict()
}

// Save writes a self-contained model directory: config.yaml,
// model.safetensors and the tokenizer files copied from tokenizerDir (skipped
// when tokenizerDir is ""). Each file is written atomically.
func Save(dir string, m *clipcap.Model, cfg DirConfig, tokenizerDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg.Format = 1
	cfg.Model = m.Cfg
	sd, err := StateDict(m)
	if err != nil {
		return err
	}
	meta := map[string]string{"format": "clipcap-1", "mapper": string(m.Cfg.Mapper.Kind)}
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, WeightsFile), sd, meta); err != nil {
		return err
	}
	if err := WriteDirConfig(dir, cfg); err != nil {
		return err
	}
	if tokenizerDir == "" {
		return nil
	}
	for _, f := range []string{VocabFile, MergesFile} {
		data, err := os.ReadFile(filepath.Join(tokenizerDir, f))
		if err != nil {
			return fmt.Errorf("copying tokenizer files: %w", err)
		}
		if err := tensorfile.WriteBytesAtomic(filepath.Join(dir, f), data); err != nil {
			return err
		}
	}
	return nil
}

// WriteDirConfig writes dir/config.yaml atomically.
func WriteDirConfig(dir string, cfg DirConfig) error {
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return tensorfile.WriteBytesAtomic(filepath.Join(dir, ConfigFile), y)
}

// ExportOfficial writes the state dict under the official names, with the
// tied gpt.lm_head.weight that GPT2LMHeadModel's state dict carries, so the
// original code's model.load_state_dict(torch.load(path)) accepts it. The
// extension picks the container: .pt (torch.save zip) or .safetensors.
func ExportOfficial(m *clipcap.Model, path string) error {
	sd, err := StateDict(m)
	if err != nil {
		return err
	}
	sd["gpt.lm_head.weight"] = sd["gpt.transformer.wte.weight"]
	switch filepath.Ext(path) {
	case ".pt", ".pth", ".bin":
		return tensorfile.WriteTorch(path, sd)
	case ".safetensors":
		return tensorfile.WriteSafetensors(path, sd, nil)
	}
	return fmt.Errorf("%s: unknown extension (use .pt or .safetensors)", path)
}
