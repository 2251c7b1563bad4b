package main

import (
	"fmt"
	"os"
	"path/filepath"

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
	fs.StringVar(&o.Model, "model", "", "model directory or released model name (clipcap-coco, ...)")
	fs.StringVar(&o.Features, "features", "", "feature store holding the split's CLIP embeddings")
	fs.BoolVar(&o.Verify, "verify", false, "hash every shard of --features against its manifest (default: only shards whose size or mtime changed)")
	fs.StringVar(&o.Images, "images", "", "image directory (files named by the annotations' images[].file_name)")
	fs.StringVar(&o.Annotations, "annotations", "", "COCO captions file with the references (default with --features: the store's captions)")
	fs.StringVar(&o.Split, "split", "", "split to evaluate (e.g. test, val)")
	fs.StringVar(&o.Out, "out", "", "output directory")
	fs.IntVar(&o.Batch, "batch", 16, "images per generation batch")
	fs.IntVar(&o.Limit, "limit", 0, "evaluate only the first N images of the split")
	fs.StringVar(&o.MeteorJar, "meteor-jar", "", "pycocoevalcap's meteor-1.5.jar (with its data/ directory)")
	fs.StringVar(&o.SpiceJar, "spice-jar", "", "pycocoevalcap's spice-1.0.jar (with its lib/ directory)")
	fs.StringVar(&o.Dataset, "dataset", "", "coco, conceptual or nocaps: which paper row to compare with (default: inferred)")
	fs.StringVar(&o.Precision, "precision", "", "GPT-2 and mapper weights: fp32, bf16 or int8 (default: the model directory's)")
	fs.StringVar(&o.CLIP, "clip", "", "CLIP weights or OpenAI model name for --images (default: the model directory's)")
	device := deviceFlag(fs)
	var dec decodeFlags
	dec.register(fs)
	rawText := rawTextFlag(fs)
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
	o.RawText = *rawText
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
	for _, k := range []string{"Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE"} {
		if v, ok := sum.Report.Corpus[k]; ok {
			fmt.Printf("%-8s %.4f\n", k, v)
		}
	}
	fmt.Printf("%d images; report: %s\n", len(sum.Results), filepath.Join(o.Out, eval.ReportFile))
	return nil
}
