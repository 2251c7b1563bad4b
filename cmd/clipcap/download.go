package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

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
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tLICENCE\tWHAT")
		for _, e := range download.Catalog() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Kind, e.Size, e.Licence, e.About)
		}
		return tw.Flush()
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("download: name at least one model or dataset (clipcap download --list)")
	}
	if *mirror != "" && fs.NArg() != 1 {
		return fmt.Errorf("--mirror stands for one checkpoint: name one released model")
	}
	ctx, stop := signalContext()
	defer stop()
	for _, name := range fs.Args() {
		switch {
		case caption.IsReleased(name):
			dir, err := caption.Released(ctx, name, caption.ResolveOptions{CacheDir: *cache, Mirror: *mirror})
			if err != nil {
				return err
			}
			fmt.Println(dir)
		case isDataset(name):
			next, err := download.FetchDataset(ctx, name, download.DatasetOptions{
				Options: download.Options{CacheDir: *cache}, Dir: *data, KeepZips: *keepZips})
			if err != nil {
				return err
			}
			fmt.Printf("%s is ready. Next:\n", name)
			for _, c := range next {
				fmt.Println("  " + c)
			}
		default:
			if *mirror != "" {
				return fmt.Errorf("--mirror applies to released models (%s), not %s", strings.Join(download.ReleasedNames(), ", "), name)
			}
			dir, err := download.Fetch(ctx, name, download.Options{CacheDir: *cache})
			if err != nil {
				return err
			}
			fmt.Println(dir)
		}
	}
	return nil
}

func isDataset(name string) bool {
	_, ok := download.LookupDataset(name)
	return ok
}
