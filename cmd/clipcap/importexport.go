package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

const importSummary = "convert published weights (official ClipCap, HuggingFace GPT-2, OpenAI / HF CLIP) into a model directory"
const exportSummary = "write a model's weights for other tools (safetensors, or the official repository's names as .pt)"

func init() {
	register(command{name: "import", summary: importSummary, run: runImport})
	register(command{name: "export", summary: exportSummary, run: runExport})
}

func runImport(args []string) error {
	fs := newFlags("import", "--from official|hf-gpt2|openai-clip|hf-clip --checkpoint F --out DIR [flags]", importSummary)
	from := fs.String("from", "", "official (CLIP_prefix_caption checkpoint), hf-gpt2, openai-clip or hf-clip")
	ckpt := fs.String("checkpoint", "", "the published weights file (or HF directory for hf-gpt2)")
	out := fs.String("out", "", "model directory to write (for openai-clip / hf-clip: an existing model directory to add the encoder to)")
	gpt2Config := fs.String("gpt2-config", "", "HuggingFace config.json of the GPT-2 (default: gpt2 small; sizes read from the weights)")
	clipFile := fs.String("clip", "", "official/hf-gpt2: CLIP weights to put in the model directory so caption --image works alone")
	clipName := fs.String("clip-name", "", "name of the CLIP model the mapper was trained on (default ViT-B/32 for 512-dim, RN50x4 for 640-dim)")
	normalize := fs.Bool("normalize-prefix", false, "official: the model was trained on L2-normalized CLIP embeddings (the transformer notebook does this; predict.py does not)")
	mapping := fs.String("mapping-type", "mlp", "hf-gpt2: mapper to create, mlp or transformer")
	prefixLen := fs.Int64("prefix-length", 10, "hf-gpt2: prefix length")
	clipLen := fs.Int64("prefix-length-clip", 10, "hf-gpt2: transformer mapper clip length")
	layers := fs.Int64("num-layers", 8, "hf-gpt2: transformer mapper layers")
	clipDim := fs.Int64("clip-dim", 512, "hf-gpt2: CLIP embedding width")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ckpt == "" || *out == "" {
		return fmt.Errorf("--checkpoint and --out are required")
	}
	var g *gpt2.Config
	if *gpt2Config != "" {
		c, err := checkpoint.ReadGPT2Config(*gpt2Config)
		if err != nil {
			return err
		}
		g = &c
	}
	var m *clipcap.Model
	var err error
	switch *from {
	case "official":
		m, err = checkpoint.LoadOfficial(*ckpt, checkpoint.OfficialOptions{GPT2: g, NormalizePrefix: *normalize}, gotch.CPU)
	case "hf-gpt2":
		cfg := gpt2.Presets["gpt2"]
		if g != nil {
			cfg = *g
		}
		mc := clipcap.Config{GPT2: cfg, Mapper: mapper.Config{Kind: mapper.Kind(*mapping), ClipDim: *clipDim, EmbedDim: cfg.NEmbd,
			PrefixLength: *prefixLen, ClipLength: *clipLen, NumLayers: *layers}, FreezeGPT2: *mapping == "transformer"}
		if m, err = clipcap.New(mc, gotch.CPU); err == nil {
			err = checkpoint.LoadHFGPT2(m, *ckpt)
		}
	case "openai-clip", "hf-clip":
		return checkpoint.ImportCLIP(*ckpt, *out)
	default:
		return fmt.Errorf("--from %q: want official, hf-gpt2, openai-clip or hf-clip", *from)
	}
	if err != nil {
		return err
	}
	tokDir := tokenizer.DefaultDir()
	if _, err := tokenizer.Load(tokDir); err != nil {
		return fmt.Errorf("the model directory needs GPT-2's tokenizer files: %w", err)
	}
	if err := checkpoint.SaveImported(*out, m, checkpoint.ImportOptions{CLIPName: *clipName, TokenizerDir: tokDir, CLIPFile: *clipFile}); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "imported %s %s model (prefix %d, GPT-2 %d layers x %d) into %s\n", *from, m.Cfg.Mapper.Kind,
		m.Cfg.Mapper.PrefixLength, m.Cfg.GPT2.NLayer, m.Cfg.GPT2.NEmbd, *out)
	return nil
}

func runExport(args []string) error {
	fs := newFlags("export", "--model DIR --format safetensors|official|gpt2-config --out F", exportSummary)
	model := fs.String("model", "", "model directory or released model name (clipcap-coco, ...)")
	format := fs.String("format", "official", "safetensors (our names), official (the original repository's names, with the tied lm_head) or gpt2-config (HuggingFace config.json of the model's GPT-2, for import --gpt2-config)")
	out := fs.String("out", "", "output file; its extension picks the container: .safetensors or .pt")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || *out == "" {
		return fmt.Errorf("--model and --out are required")
	}
	dir, err := caption.ResolveModel(context.Background(), *model, caption.ResolveOptions{})
	if err != nil {
		return err
	}
	m, _, err := checkpoint.Load(dir, gotch.CPU)
	if err != nil {
		return err
	}
	switch *format {
	case "official":
		return checkpoint.ExportOfficial(m, *out)
	case "gpt2-config":
		return os.WriteFile(*out, append(m.Cfg.GPT2.JSON(), '\n'), 0o644)
	case "safetensors":
		if filepath.Ext(*out) != ".safetensors" {
			return fmt.Errorf("--format safetensors writes a .safetensors file, not %s", *out)
		}
		sd, err := checkpoint.StateDict(m)
		if err != nil {
			return err
		}
		return tensorfile.WriteSafetensors(*out, sd, map[string]string{"format": "clipcap-1"})
	}
	return fmt.Errorf("--format %q: want safetensors, official or gpt2-config", *format)
}
