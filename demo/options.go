package demo

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Options are what `clipcap demo-data` writes: the set's directory and
// sizes, and optionally a seeded random CLIP tower.
type Options struct {
	Out        string // directory for images/ and demo.jsonl
	Sizes             // images per split
	Size       int    // image side in pixels
	Seed       int64
	RandomCLIP string // also write a random CLIP ViT here ("": none)
}

// RegisterFlags defines demo-data's flags on fs, with their defaults.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Out, "out", "", "directory for images/ and demo.jsonl")
	fs.IntVar(&o.Train, "train", 1500, "training images")
	fs.IntVar(&o.Val, "val", 150, "validation images")
	fs.IntVar(&o.Test, "test", 150, "held-out test images")
	fs.IntVar(&o.Size, "size", 64, "image side in pixels")
	fs.Int64Var(&o.Seed, "seed", 1, "random seed")
	fs.StringVar(&o.RandomCLIP, "random-clip", "", "also write a seeded random CLIP ViT here (for machines without pretrained CLIP weights)")
}

// Write generates the set (Generate) and the random tower, then says what
// it wrote on log.
func Write(o Options, log io.Writer) error {
	if err := Generate(o.Out, o.Sizes, o.Size, o.Seed); err != nil {
		return err
	}
	if o.RandomCLIP != "" {
		if err := os.MkdirAll(filepath.Dir(o.RandomCLIP), 0o755); err != nil {
			return err
		}
		if err := WriteRandomCLIP(o.RandomCLIP, o.Seed); err != nil {
			return err
		}
	}
	fmt.Fprintf(log, "demo data: %d train, %d val, %d test images in %s\n", o.Train, o.Val, o.Test, o.Out)
	return nil
}
