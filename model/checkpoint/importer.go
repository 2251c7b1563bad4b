package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// ImportOptions describe one `clipcap import`.
type ImportOptions struct {
	From       string // official, hf-gpt2, openai-clip or hf-clip
	Checkpoint string // the published weights (file, or HF directory for hf-gpt2)
	Out        string // model directory to write (CLIP imports: one to add the encoder to)
	GPT2Config string // HF config.json of the GPT-2 (default: gpt2 small)
	CLIPFile   string // official/hf-gpt2: CLIP weights to add to the directory
	// CLIPName is the CLIP model the mapper was trained on (default by
	// embedding width: ViT-B/32 for 512, RN50x4 for 640, ...).
	CLIPName        string
	NormalizePrefix bool   // official: trained on L2-normalized embeddings
	TokenizerDir    string // vocab.json + merges.txt copied into the directory
	// Generation is the decoding the model's authors used; nil means
	// DefaultGeneration.
	Generation *generate.Options
	// hf-gpt2: the mapper to create around the GPT-2.
	Mapper mapper.Config
}

// Import converts published weights into a self-contained model directory
// (or adds a CLIP encoder to one) and returns the model's configuration.
func Import(o ImportOptions) (clipcap.Config, error) {
	var g *gpt2.Config
	if o.GPT2Config != "" {
		c, err := ReadGPT2Config(o.GPT2Config)
		if err != nil {
			return clipcap.Config{}, err
		}
		g = &c
	}
	var m *clipcap.Model
	var err error
	switch o.From {
	case "official":
		m, err = LoadOfficial(o.Checkpoint, OfficialOptions{GPT2: g, NormalizePrefix: o.NormalizePrefix}, gotch.CPU)
	case "hf-gpt2":
		cfg := gpt2.Presets["gpt2"]
		if g != nil {
			cfg = *g
		}
		mc := o.Mapper
		mc.EmbedDim = cfg.NEmbd
		if m, err = clipcap.New(clipcap.Config{GPT2: cfg, Mapper: mc, FreezeGPT2: mc.Kind == mapper.Transformer}, gotch.CPU); err == nil {
			err = LoadHFGPT2(m, o.Checkpoint)
		}
	case "openai-clip", "hf-clip":
		cfg, err := ReadDirConfig(o.Out)
		if err != nil {
			return clipcap.Config{}, err
		}
		return cfg.Model, ImportCLIP(o.Checkpoint, o.Out)
	default:
		return clipcap.Config{}, fmt.Errorf("--from %q: want official, hf-gpt2, openai-clip or hf-clip", o.From)
	}
	if err != nil {
		return clipcap.Config{}, err
	}
	for _, f := range []string{VocabFile, MergesFile} {
		if _, err := os.Stat(filepath.Join(o.TokenizerDir, f)); err != nil {
			return clipcap.Config{}, fmt.Errorf("the model directory needs GPT-2's tokenizer files (scripts/setup.sh installs them): %w", err)
		}
	}
	if o.From == "official" && o.Generation == nil {
		gen := OfficialGeneration()
		o.Generation = &gen
	}
	if err := SaveImported(o.Out, m, o); err != nil {
		return clipcap.Config{}, err
	}
	return m.Cfg, nil
}

// CLIPNameForDim names the OpenAI CLIP model whose embeddings have width d
// as the published ClipCap models used them: ViT-B/32 (512), RN50x4 (640),
// ViT-L/14 (768), RN50 (1024); "" for other widths.
func CLIPNameForDim(d int64) string {
	return map[int64]string{512: "ViT-B/32", 640: "RN50x4", 768: "ViT-L/14", 1024: "RN50"}[d]
}

// SaveImported writes an imported model as a complete model directory:
// weights, config.yaml with its CLIP model and decoding defaults, and the
// tokenizer files.
func SaveImported(dir string, m *clipcap.Model, opt ImportOptions) error {
	name := opt.CLIPName
	if name == "" {
		name = CLIPNameForDim(m.Cfg.Mapper.ClipDim)
	}
	cfg := NewDirConfig(m, name)
	if opt.Generation != nil {
		cfg.Generation = *opt.Generation
	}
	if err := Save(dir, m, cfg, opt.TokenizerDir); err != nil {
		return err
	}
	if opt.CLIPFile != "" {
		return ImportCLIP(opt.CLIPFile, dir)
	}
	return nil
}

// ImportCLIP converts a CLIP image tower into the model directory's
// clip.safetensors (OpenAI names; HF files are kept in their own names,
// which the loader maps) and records it in config.yaml.
func ImportCLIP(src, dir string) error {
	cfg, err := ReadDirConfig(dir)
	if err != nil {
		return err
	}
	enc, ccfg, err := clip.Load(src, gotch.CPU)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "clip: %s: %s, architecture %s\n", src, ccfg.Describe(), enc.ArchSource)
	if ccfg.EmbedDim != cfg.Model.Mapper.ClipDim {
		return fmt.Errorf("%s gives %d-dim embeddings; the model in %s expects %d", src, ccfg.EmbedDim, dir, cfg.Model.Mapper.ClipDim)
	}
	srcFile, err := Open(src)
	if err != nil {
		return err
	}
	defer srcFile.Close()
	tensors := map[string]tensorfile.RawTensor{}
	for _, n := range srcFile.Names() {
		if strings.HasPrefix(n, "visual.") || strings.HasPrefix(n, "vision_model.") || strings.HasPrefix(n, "visual_projection.") {
			rt, err := srcFile.Tensor(n)
			if err != nil {
				return err
			}
			tensors[n] = rt
		}
	}
	if len(tensors) == 0 {
		return fmt.Errorf("%s: no image-tower tensors (visual.* or vision_model.*)", src)
	}
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, "clip.safetensors"), tensors, map[string]string{"source": filepath.Base(src)}); err != nil {
		return err
	}
	cfg.CLIP.Weights = "clip.safetensors"
	cfg.CLIP.EmbedDim = ccfg.EmbedDim
	// The directory holds no config.json: keep what shapes cannot tell.
	cfg.CLIP.Heads, cfg.CLIP.Activation = ccfg.Heads, string(ccfg.Act)
	return WriteDirConfig(dir, cfg)
}

// Export writes a model directory's weights for other tools: format
// "official" (the original repository's names; .pt or .safetensors by the
// extension of out), "safetensors" (our names) or "gpt2-config" (the
// GPT-2's HuggingFace config.json).
func Export(modelDir, format, out string) error {
	m, _, err := Load(modelDir, gotch.CPU)
	if err != nil {
		return err
	}
	switch format {
	case "official":
		return ExportOfficial(m, out)
	case "gpt2-config":
		return os.WriteFile(out, append(m.Cfg.GPT2.JSON(), '\n'), 0o644)
	case "safetensors":
		if filepath.Ext(out) != ".safetensors" {
			return fmt.Errorf("--format safetensors writes a .safetensors file, not %s", out)
		}
		sd, err := StateDict(m)
		if err != nil {
			return err
		}
		return tensorfile.WriteSafetensors(out, sd, map[string]string{"format": "clipcap-1"})
	}
	return fmt.Errorf("--format %q: want safetensors, official or gpt2-config", format)
}
