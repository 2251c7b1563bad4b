package main

import (
	"os"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
)

func init() {
	register(command{
		name:    "embed",
		summary: "CLIP image embeddings, one row per image, float32 .npy",
		run:     runEmbed,
	})
}

func runEmbed(args []string) error {
	fs := newFlags("embed", "--clip NAME_OR_PATH --image F... --out F.npy [--batch N]",
		"Encode images with a CLIP image tower and write their embeddings as a float32\n"+
			".npy [N, D], rows in input order. --clip takes an OpenAI model name (ViT-B/32,\n"+
			"RN50x4, ...; fetched into the download cache if absent) or a weights file:\n"+
			"an OpenAI .pt release, an OpenAI- or OpenCLIP-named state dict, or Hugging Face\n"+
			"CLIPVisionModelWithProjection safetensors; or a Hugging Face / OpenCLIP directory.\n"+
			"A config.json (or open_clip_config.json) beside the weights gives the head count\n"+
			"and activation. Images may also follow the flags.")
	var images stringList
	clipArg := fs.String("clip", "", "OpenAI CLIP model name, weights file or Hugging Face / OpenCLIP directory (required)")
	fs.Var(&images, "image", "image file (repeatable)")
	out := fs.String("out", "", "output .npy file (required)")
	batch := fs.Int("batch", 32, "images per forward pass")
	device := deviceFlag(fs)
	half := fs.Bool("half", false, "compute in fp16 (CUDA only)")
	precision := fs.String("precision", "", "fp32 (default), or bf16: the tower's products in bfloat16 (int8 means bf16 for CLIP)")
	cache := fs.String("cache", "", "download cache (default $CLIPCAP_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/clipcap)")
	// --image F... takes every following non-flag argument, so flags may
	// come after the image list: parse, collect the positionals, resume.
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		rest = fs.Args()
		i := 0
		for i < len(rest) && (rest[i] == "-" || !strings.HasPrefix(rest[i], "-")) {
			images = append(images, rest[i])
			i++
		}
		if rest = rest[i:]; len(rest) == 0 {
			break
		}
	}
	switch {
	case *clipArg == "":
		return usagef("--clip is required")
	case *out == "":
		return usagef("--out is required")
	case len(images) == 0:
		return usagef("name at least one --image")
	case *batch < 1:
		return usagef("--batch must be at least 1, got %d", *batch)
	}
	dev, err := torchrt.ParseDevice(*device)
	if err != nil {
		return usageError{err}
	}
	ctx, stop := signalContext()
	defer stop()
	m, err := caption.LoadCLIPAt(ctx, *clipArg, *cache, dev, *half, *precision, os.Stderr)
	if err != nil {
		return err
	}
	rows, err := caption.EmbedFiles(ctx, m, images, *batch)
	if err != nil {
		return err
	}
	return tensorfile.WriteNpy(*out, rows)
}
