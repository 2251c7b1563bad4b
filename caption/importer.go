package caption

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// ImportOptions describe one `clipcap import` (see checkpoint.Import).
type ImportOptions struct {
	From, Checkpoint, Out, GPT2Config string
	CLIPFile, CLIPName                string // CLIP weights file or HF / OpenCLIP directory; its model name
	NormalizePrefix                   bool
	NormalizeStated                   bool // --normalize-prefix or --no-normalize-prefix was given
	// hf-gpt2: the mapper to create around the GPT-2.
	MappingType                                  string
	PrefixLength, ClipLength, NumLayers, ClipDim int64
}

// Import converts published weights into a model directory with the
// default tokenizer files (or adds a CLIP encoder to one; CLIP directories
// are taken by their weights file, the config beside it read by the
// loader), and logs what it made and any warning to log.
func Import(o ImportOptions, log io.Writer) error {
	var err error
	if o.From == "hf-clip" || o.From == "openai-clip" {
		if o.Checkpoint, err = clipDirArg(o.Checkpoint); err != nil {
			return err
		}
	}
	if o.CLIPFile, err = clipDirArg(o.CLIPFile); err != nil {
		return err
	}
	cfg, err := checkpoint.Import(checkpoint.ImportOptions{From: o.From, Checkpoint: o.Checkpoint, Out: o.Out, GPT2Config: o.GPT2Config,
		CLIPFile: o.CLIPFile, CLIPName: o.CLIPName, NormalizePrefix: o.NormalizePrefix, TokenizerDir: tokenizer.DefaultDir(),
		Mapper: mapper.Config{Kind: mapper.Kind(o.MappingType), ClipDim: o.ClipDim, PrefixLength: o.PrefixLength,
			ClipLength: o.ClipLength, NumLayers: o.NumLayers}})
	if err != nil {
		return err
	}
	if o.From == "official" {
		if w := checkpoint.NormalizeWarning(cfg, o.NormalizeStated); w != "" {
			fmt.Fprintln(log, w)
		}
	}
	fmt.Fprintf(log, "imported %s %s model (prefix %d, GPT-2 %d layers x %d) into %s\n", o.From, cfg.Mapper.Kind,
		cfg.Mapper.PrefixLength, cfg.GPT2.NLayer, cfg.GPT2.NEmbd, o.Out)
	return nil
}

// Export writes a model directory's (or released model's) weights for
// other tools; see checkpoint.Export for the formats. Format "dir" (the
// default when precision is bf16 or int8) writes a model directory whose
// weights are stored in precision (checkpoint.ExportDir), logging any note
// to log.
func Export(ctx context.Context, model, format, out, precision string, log io.Writer) error {
	p, err := nn.ParsePrecision(precision)
	if err != nil {
		return err
	}
	if format == "" {
		format = "official"
		if p != nn.FP32 {
			format = "dir"
		}
	}
	if format != "dir" && p != nn.FP32 {
		return fmt.Errorf("--precision %s writes a model directory (--format dir), not --format %s", p, format)
	}
	dir, err := ResolveModel(ctx, model, ResolveOptions{})
	if err != nil {
		return err
	}
	if format != "dir" {
		return checkpoint.Export(dir, format, out)
	}
	note, err := checkpoint.ExportDir(dir, out, p)
	if note != "" {
		fmt.Fprintln(log, note)
	}
	if err == nil {
		fmt.Fprintf(log, "wrote %s (%s weights)\n", out, p)
	}
	return err
}

// clipDirArg turns a Hugging Face / OpenCLIP CLIP directory into its
// weights file (the loader reads the config beside it); files pass through.
func clipDirArg(p string) (string, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return CLIPDirWeights(p)
	}
	return p, nil
}
