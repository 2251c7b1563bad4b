package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/demo"
)

const demoDataSummary = "write the embedded demo's synthetic captioning set (and a seeded random CLIP tower)"

func init() {
	register(command{name: "demo-data", summary: demoDataSummary, run: runDemoData})
}

func runDemoData(args []string) error {
	fs := newFlags("demo-data", "--out DIR [flags]", demoDataSummary)
	out := fs.String("out", "", "directory for images/ and demo.jsonl")
	train := fs.Int("train", 1500, "training images")
	val := fs.Int("val", 150, "validation images")
	test := fs.Int("test", 150, "held-out test images")
	size := fs.Int("size", 64, "image side in pixels")
	seed := fs.Int64("seed", 1, "random seed")
	clipOut := fs.String("random-clip", "", "also write a seeded random CLIP ViT here (for machines without pretrained CLIP weights)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if err := demo.Generate(*out, demo.Sizes{Train: *train, Val: *val, Test: *test}, *size, *seed); err != nil {
		return err
	}
	if *clipOut != "" {
		if err := os.MkdirAll(filepath.Dir(*clipOut), 0o755); err != nil {
			return err
		}
		if err := demo.WriteRandomCLIP(*clipOut, *seed); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "demo data: %d train, %d val, %d test images in %s\n", *train, *val, *test, *out)
	return nil
}
