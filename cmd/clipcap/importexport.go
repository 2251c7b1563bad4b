package main

import (
	"fmt"
	"os"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/train"
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
	noNormalize := fs.Bool("no-normalize-prefix", false, "official: the model was trained on raw CLIP embeddings (predict.py's way); silences the transformer variant's warning")
	mapping := fs.String("mapping-type", "mlp", "hf-gpt2: mapper to create, mlp or transformer")
	prefixLen := fs.Int64("prefix-length", 10, "hf-gpt2: prefix length")
	clipLen := fs.Int64("prefix-length-clip", 10, "hf-gpt2: transformer mapper clip length")
	layers := fs.Int64("num-layers", 8, "hf-gpt2: transformer mapper layers")
	clipDim := fs.Int64("clip-dim", 512, "hf-gpt2: CLIP embedding width")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *ckpt == "" || *out == "" {
		return usagef("--checkpoint and --out are required")
	}
	if *normalize && *noNormalize {
		return usagef("--normalize-prefix and --no-normalize-prefix contradict each other")
	}
	return caption.Import(caption.ImportOptions{From: *from, Checkpoint: *ckpt, Out: *out, GPT2Config: *gpt2Config,
		CLIPFile: *clipFile, CLIPName: *clipName, NormalizePrefix: *normalize, NormalizeStated: *normalize || *noNormalize,
		MappingType: *mapping, PrefixLength: *prefixLen, ClipLength: *clipLen, NumLayers: *layers, ClipDim: *clipDim}, os.Stderr)
}

func runExport(args []string) error {
	fs := newFlags("export", "--model DIR --format safetensors|official|gpt2-config|dir --out F [--precision bf16|int8]", exportSummary)
	model := fs.String("model", "", "model directory or released model name (clipcap-coco, ...); with --format official also a training run, whose epochs go into the --out directory as the original's {prefix}-{epoch:03d}.pt and {prefix}_latest.pt")
	format := fs.String("format", "", "safetensors (our names), official (the original repository's names, with the tied lm_head; the default), gpt2-config (HuggingFace config.json of the model's GPT-2, for import --gpt2-config) or dir (a model directory; the default with --precision)")
	out := fs.String("out", "", "output file; its extension picks the container: .safetensors or .pt (--format dir: a new directory)")
	precision := fs.String("precision", "", "--format dir: store the GPT-2 and mapper weights as fp32, bf16 or int8, so loading at that precision converts nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || *out == "" {
		return usagef("--model and --out are required")
	}
	if (*format == "official" || *format == "") && *precision == "" && train.IsRunDir(*model) {
		files, err := train.ExportOfficialRun(*model, *out) // --out is a directory: the original's file names
		for _, f := range files {
			fmt.Fprintln(os.Stderr, "wrote", f)
		}
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return caption.Export(ctx, *model, *format, *out, *precision, os.Stderr)
}
