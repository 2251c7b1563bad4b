package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/clipcap/clipcap/extract"
	"github.com/clipcap/clipcap/internal/torchrt"
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

// extractFlags holds the parsed flags of `clipcap extract`.
type extractFlags struct {
	dataset, input, images, clip, out, split, shard, device, cache *string
	restval, f16, merge, download, retryFailed                     *bool
	half, noAddPeriod                                              *bool
	shardSize, batch, workers, limit, dlWorkers, perHost           *int
	rate                                                           *float64
	timeout                                                        *time.Duration
	maxBytes                                                       *int64
	maxPixels                                                      *int
}

// newExtractFlags defines the flags; the deploy recipes' test parses their
// command lines with it.
func newExtractFlags() (*flag.FlagSet, *extractFlags) {
	fs := newFlags("extract", extractUsage,
		"Encode every image of a dataset with a CLIP image tower into a feature store\n"+
			"(embedding shards, captions.jsonl, manifest.json). Bad images are skipped and\n"+
			"listed in the manifest. A killed run resumes where its last shard was committed.\n"+
			"--shard K/N processes the items with index % N == K; merge the N parts with\n"+
			"--merge. --split filters splits (Karpathy, JSONL) or labels files without one.")
	return fs, &extractFlags{
		dataset:     fs.String("dataset", "", "dataset format: "+strings.Join(extract.Formats, ", ")),
		input:       fs.String("input", "", "annotation file, TSV, JSONL or image folder"),
		images:      fs.String("images", "", "images root (default: the input's directory; for train_caption.json, its grandparent)"),
		clip:        fs.String("clip", "", "OpenAI CLIP model name, weights file or Hugging Face / OpenCLIP directory"),
		out:         fs.String("out", "", "feature store directory"),
		split:       fs.String("split", "", "split to keep (or to label items whose file has none)"),
		restval:     fs.Bool("restval-as-train", true, "count Karpathy's restval images as train"),
		shard:       fs.String("shard", "", "K/N: this run's part of a distributed extraction"),
		shardSize:   fs.Int("shard-size", 4096, "inputs per committed store shard (keep it equal across resumes and merges)"),
		batch:       fs.Int("batch", 32, "images per CLIP forward pass"),
		workers:     fs.Int("workers", 0, "decode/preprocess workers (default: number of CPUs)"),
		f16:         fs.Bool("float16", false, "store embeddings as float16"),
		half:        fs.Bool("half", false, "run CLIP in fp16 as the original does on CUDA (and store the fp16 embeddings); CUDA only"),
		noAddPeriod: fs.Bool("no-add-period", false, "conceptual: keep captions without the trailing \".\" the original's parse_conceptual.py adds"),
		limit:       fs.Int("limit", 0, "only the first N items of the dataset (before sharding)"),
		device:      deviceFlag(fs),
		cache:       fs.String("cache", "", "download cache for CLIP model names"),
		merge:       fs.Bool("merge", false, "merge the part stores given as arguments into --out"),
		download:    fs.Bool("download", false, "first download URL images (Conceptual Captions) into the images root"),
		retryFailed: fs.Bool("retry-failed", false, "with --download: retry URLs that failed in earlier runs"),
		dlWorkers:   fs.Int("download-workers", 16, "with --download: concurrent downloads"),
		perHost:     fs.Int("per-host", 4, "with --download: concurrent requests per host"),
		rate:        fs.Float64("rate", 0, "with --download: requests per second per host (0: unlimited)"),
		timeout:     fs.Duration("timeout", 30*time.Second, "with --download: per-request timeout"),
		maxBytes:    fs.Int64("max-bytes", 32<<20, "with --download: largest accepted image"),
		maxPixels:   fs.Int("max-pixels", extract.DefaultMaxPixels, "refuse images declaring more pixels, from their header (-1: PIL's limit)"),
	}
}

func runExtract(args []string) error {
	if len(args) > 0 && args[0] == "merge" {
		args = append([]string{"--merge"}, args[1:]...)
	}
	fs, f := newExtractFlags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *f.out == "" {
		return usagef("--out is required (see --help)")
	}
	ctx, stop := signalContext()
	defer stop()
	if *f.merge {
		if fs.NArg() == 0 {
			return fmt.Errorf("--merge needs the part stores as arguments")
		}
		return extract.Merge(*f.out, fs.Args(), *f.shardSize, os.Stderr)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (part stores are only taken with --merge)", fs.Args())
	}
	if *f.dataset == "" || *f.input == "" || *f.clip == "" {
		return usagef("--dataset, --input and --clip are required (see --help)")
	}
	k, n, err := parseShard(*f.shard)
	if err != nil {
		return err
	}
	dev, err := torchrt.ParseDevice(*f.device)
	if err != nil {
		return err
	}
	opt := extract.Options{Dataset: *f.dataset, Input: *f.input, Images: *f.images, Split: *f.split, RestvalAsTrain: *f.restval,
		CLIP: *f.clip, Cache: *f.cache, Out: *f.out, ShardIndex: k, ShardCount: n, ShardSize: *f.shardSize, Batch: *f.batch,
		Workers: *f.workers, Float16: *f.f16, Limit: *f.limit, Device: dev, Stderr: os.Stderr,
		Half: *f.half, NoAddPeriod: *f.noAddPeriod, MaxPixels: *f.maxPixels}
	if *f.download {
		opt.Download = &extract.DownloadOptions{Workers: *f.dlWorkers, PerHost: *f.perHost, Rate: *f.rate,
			Timeout: *f.timeout, MaxBytes: *f.maxBytes, RetryFailed: *f.retryFailed}
	}
	_, err = extract.Run(ctx, opt)
	return err
}

// parseShard reads "K/N" ("" = the whole dataset).
func parseShard(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("--shard %q: want K/N with 0 <= K < N", s)
	}
	return k, n, nil
}
