package main

import (
	"fmt"
	"strings"

	"github.com/clipcap/clipcap/data/download"
)

func init() {
	register(command{
		name:    "download",
		light:   true,
		summary: "fetch published weights into the cache, sha256-verified, resumable",
		run:     runDownload,
	})
}

func runDownload(args []string) error {
	fs := newFlags("download", "NAME... [--cache DIR] [--list]",
		"Fetch published weights (GPT-2 from the Hugging Face hub, OpenAI CLIP releases)\n"+
			"into <cache>/models/<name>/. Interrupted downloads resume on the next run.\n"+
			"Endpoints: CLIPCAP_HF_ENDPOINT, CLIPCAP_CLIP_ENDPOINT. Known names: "+strings.Join(download.Names(), ", "))
	cache := fs.String("cache", "", "cache directory (default $CLIPCAP_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/clipcap)")
	list := fs.Bool("list", false, "list the known model names and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		for _, n := range download.Names() {
			fmt.Println(n)
		}
		return nil
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("download: name at least one model (%s)", strings.Join(download.Names(), ", "))
	}
	ctx, stop := signalContext()
	defer stop()
	for _, name := range fs.Args() {
		dir, err := download.Fetch(ctx, name, download.Options{CacheDir: *cache})
		if err != nil {
			return err
		}
		fmt.Println(dir)
	}
	return nil
}
