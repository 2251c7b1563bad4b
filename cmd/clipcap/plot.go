package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/train"
)

const plotSummary = "draw a run's train and validation loss curves (SVG or PNG)"

func init() {
	register(command{name: "plot", summary: plotSummary, light: true, run: runPlot})
}

func runPlot(args []string) error {
	fs := newFlags("plot", "--run DIR [--out F.svg|F.png]", plotSummary)
	run := fs.String("run", "", "run directory (holds metrics.jsonl)")
	out := fs.String("out", "", "output file; the extension picks SVG or PNG (default RUN/loss.svg)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *run == "" {
		return usagef("--run is required")
	}
	if *out == "" {
		*out = filepath.Join(*run, "loss.svg")
	}
	if err := train.Plot(*run, *out); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", *out)
	return nil
}
