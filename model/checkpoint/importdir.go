package checkpoint

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
)

// ImportOptions say how an imported model becomes a model directory.
type ImportOptions struct {
	// CLIPName is the CLIP model the mapper was trained on; "" guesses it
	// from the mapper's input width (CLIPNameForDim).
	CLIPName string
	// TokenizerDir holds GPT-2's vocab.json and merges.txt to copy in.
	TokenizerDir string
	// Generation is the decoding the model's authors used; nil means
	// DefaultGeneration.
	Generation *generate.Options
	// CLIPFile, when set, is CLIP weights to put in the directory
	// (ImportCLIP) so it works without a download.
	CLIPFile string
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
	_, ccfg, err := clip.Load(src, gotch.CPU)
	if err != nil {
		return err
	}
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
	return WriteDirConfig(dir, cfg)
}
