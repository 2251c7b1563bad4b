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
	var f caption.ImportFlags
	f.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.Checkpoint == "" || f.Out == "" {
		return usagef("--checkpoint and --out are required")
	}
	if f.NormalizePrefix && f.NoNormalizePrefix {
		return usagef("--normalize-prefix and --no-normalize-prefix contradict each other")
	}
	return caption.Import(f.Parsed(), os.Stderr)
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
