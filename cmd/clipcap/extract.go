package main

import (
	"fmt"
	"os"

	"github.com/clipcap/clipcap/extract"
)

func init() {
	register(command{
		name:    "extract",
		summary: "pre-extract CLIP embeddings of a dataset into a feature store (--shard K/N, resumable; merge)",
		run:     runExtract,
	})
}

const extractUsage = "--dataset coco|clipcap|coco-format|conceptual|nocaps|folder|jsonl --input F_or_DIR [--images DIR] " +
	"--clip NAME_OR_PATH --out STORE [--split S] [--shard K/N] [--shard-size N] [--batch N] [--workers N] [--float16] [--limit N]\n" +
	"       clipcap extract --merge --out STORE [--shard-size N] PART...   (or: clipcap extract merge ...)"

func runExtract(args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		args = append([]string{"--merge"}, args[1:]...)
	}
	fs := newFlags("extract", extractUsage,
		"Encode every image of a dataset with a CLIP image tower into a feature store\n"+
			"(embedding shards, captions.jsonl, manifest.json). Bad images are skipped and\n"+
			"listed in the manifest. A killed run resumes where its last shard was committed.\n"+
			"--shard K/N processes the items with index % N == K; merge the N parts with\n"+
			"--merge. --split filters splits (Karpathy, JSONL) or labels files without one.")
	var f extract.Flags // the deploy recipes' test parses their command lines with these flags
	f.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.Out == "" {
		return usagef("--out is required (see --help)")
	}
	ctx, stop := signalContext()
	defer stop()
	if f.Merge {
		if fs.NArg() == 0 {
			return fmt.Errorf("--merge needs the part stores as arguments")
		}
		return extract.Merge(f.Out, fs.Args(), f.ShardSize, os.Stderr)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (part stores are only taken with --merge)", fs.Args())
	}
	if f.Dataset == "" || f.Input == "" || f.CLIP == "" {
		return usagef("--dataset, --input and --clip are required (see --help)")
	}
	opt, err := f.RunOptions()
	if err != nil {
		return err
	}
	opt.Stderr = os.Stderr
	_, err = extract.Run(ctx, opt)
	return err
}
