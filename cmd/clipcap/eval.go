package main

import (
	"fmt"
	"os"

	"github.com/clipcap/clipcap/eval"
	"github.com/clipcap/clipcap/internal/torchrt"
)

const evalSummary = "caption a split, score it like pycocoevalcap and write a report"

func init() {
	register(command{name: "eval", summary: evalSummary, run: runEval})
}

func runEval(args []string) error {
	fs := newFlags("eval", "--model DIR (--features STORE | --images DIR --annotations A.json) [--annotations A.json] --split S --out DIR [flags]",
		evalSummary+".\nWrites results.json (COCO results), metrics.json (pycocoevalcap's keys), per_image.json,\nreferences.json and report.md (scores beside the paper's) into --out; nocaps also domains.json.\nMETEOR and SPICE need their jars (and java); metrics not computed are absent.")
	o := eval.Options{}
	o.RegisterFlags(fs)
	device := deviceFlag(fs)
	var dec decodeFlags
	dec.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("eval: unexpected arguments %v", fs.Args())
	}
	if o.Model == "" || o.Split == "" || o.Out == "" {
		return usagef("--model, --split and --out are required")
	}
	var err error
	if o.Decode, err = dec.options(); err != nil {
		return err
	}
	if o.Device, err = torchrt.ParseDevice(*device); err != nil {
		return err
	}
	o.Progress = os.Stderr
	ctx, stop := signalContext()
	defer stop()
	sum, err := eval.Run(ctx, o)
	if err != nil {
		return err
	}
	return sum.WriteScores(os.Stdout, o.Out)
}
