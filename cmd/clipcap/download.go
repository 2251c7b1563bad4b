package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/download"
)

func init() {
	register(command{
		name:    "download",
		light:   true,
		summary: "fetch released ClipCap models, datasets and published weights into the cache, verified, resumable",
		run:     runDownload,
	})
}

func runDownload(args []string) error {
	fs := newFlags("download", "NAME... [--cache DIR] [--data DIR] [--mirror FILE_OR_URL] [--list]",
		"Fetch by name: released ClipCap models ("+strings.Join(download.ReleasedNames(), ", ")+"), imported\n"+
			"into <cache>/models/<name>/ with their CLIP tower; datasets ("+strings.Join(download.DatasetNames(), ", ")+")\n"+
			"into --data; GPT-2 and OpenAI CLIP weights. Interrupted downloads resume on the next run.\n"+
			"Endpoints: CLIPCAP_HF_ENDPOINT or HF_ENDPOINT, CLIPCAP_CLIP_ENDPOINT, CLIPCAP_DRIVE_ENDPOINT;\n"+
			"HF_HUB_OFFLINE=1 forbids network access. --list shows everything with sizes and licences.")
	cache := fs.String("cache", "", "cache directory (default $CLIPCAP_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/clipcap)")
	list := fs.Bool("list", false, "list what can be downloaded, with sizes and licences, and exit")
	data := fs.String("data", "", "datasets: the directory to fill (default data/coco, data/nocaps, data/conceptual)")
	mirror := fs.String("mirror", "", "released models: a local copy or another URL of the official checkpoint, used first (when Google Drive's quota blocks)")
	keepZips := fs.Bool("keep-zips", false, "datasets: keep the archives after unpacking")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		return download.WriteCatalog(os.Stdout)
	}
	if fs.NArg() == 0 {
		return usagef("name at least one model or dataset (clipcap download --list)")
	}
	if *mirror != "" && fs.NArg() != 1 {
		return usagef("--mirror stands for one checkpoint: name one released model")
	}
	ctx, stop := signalContext()
	defer stop()
	for _, name := range fs.Args() {
		msg, err := caption.Download(ctx, name, caption.DownloadOptions{CacheDir: *cache, DataDir: *data, Mirror: *mirror, KeepZips: *keepZips})
		if err != nil {
			return err
		}
		fmt.Println(msg)
	}
	return nil
}
