package main

import (
	"bufio"
	"os"

	"github.com/clipcap/clipcap/caption"
)

const captionSummary = "caption images or CLIP embeddings with a model directory"

func init() {
	register(command{name: "caption", summary: captionSummary, run: runCaption})
}

func runCaption(args []string) error {
	fs := newFlags("caption", "--model DIR (--image F... | --embedding F.npy) [flags]", captionSummary)
	var mf modelFlags
	mf.RegisterFlags(fs)
	var images stringList
	fs.Var(&images, "image", "image file (repeatable; also positional arguments)")
	embedding := fs.String("embedding", "", ".npy file of CLIP embeddings [N, D], one caption per row")
	asJSON := fs.Bool("json", false, "print one JSON object per input: {\"caption\", \"tokens\", ...}")
	batch := fs.Int("batch", 16, "inputs per forward pass")
	var dec decodeFlags
	dec.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	images = append(images, fs.Args()...)
	if (len(images) == 0) == (*embedding == "") {
		return usagef("give either --image files or --embedding F.npy")
	}
	opt, err := dec.options()
	if err != nil {
		return err
	}
	noEncoder := ""
	if *embedding != "" {
		noEncoder = "-" // embeddings need no encoder
	}
	ctx, stop := signalContext()
	defer stop()
	c, unlock, err := mf.loadCaptioner(noEncoder)
	if err != nil {
		return err
	}
	defer unlock()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	p := caption.Printer{W: out, JSON: *asJSON, Labels: len(images) > 1}
	if *embedding != "" {
		return c.FromNpy(*embedding, *batch, opt, func(i int, cp caption.Caption) error {
			return p.Print(*embedding, i, cp)
		})
	}
	return c.FromFiles(ctx, images, *batch, opt, func(i int, cp caption.Caption) error {
		return p.Print(images[i], i, cp)
	})
}
