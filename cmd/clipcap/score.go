package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/clipcap/clipcap/eval/metrics"
)

func init() {
	register(command{
		name:    "score",
		light:   true,
		summary: "score a COCO-format results file like pycocoevalcap",
		run:     runScore,
	})
}

func runScore(args []string) error {
	fs := newFlags("score", "--results R.json --annotations A.json [--json] [--meteor-jar F] [--spice-jar F]",
		"Score captions with pycocoevalcap's metrics: BLEU-1..4, ROUGE-L and CIDEr-D always; METEOR and SPICE\nwhen their jars are given (java on PATH). Metrics not computed are absent from the output.")
	results := fs.String("results", "", "results file: [{\"image_id\", \"caption\"}, ...]")
	annotations := fs.String("annotations", "", "COCO captions annotation file ({\"annotations\": [...], \"images\": [...]})")
	asJSON := fs.Bool("json", false, "print corpus scores as JSON with pycocoevalcap's keys")
	perImage := fs.String("per-image", "", "also write per-image scores to this JSON file")
	meteorJar := fs.String("meteor-jar", "", "pycocoevalcap's meteor-1.5.jar (with its data/ directory)")
	spiceJar := fs.String("spice-jar", "", "pycocoevalcap's spice-1.0.jar (with its lib/ directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *results == "" || *annotations == "" || fs.NArg() > 0 {
		fs.Usage()
		return usagef("--results and --annotations are required (and nothing else)")
	}
	res, err := metrics.LoadResults(*results)
	if err != nil {
		return err
	}
	ann, err := metrics.LoadAnnotations(*annotations)
	if err != nil {
		return err
	}
	rep, err := metrics.Score(res, ann, metrics.Options{MeteorJar: *meteorJar, SpiceJar: *spiceJar})
	if err != nil {
		return err
	}
	if *perImage != "" {
		b, err := json.Marshal(rep.Images)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*perImage, b, 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		var parts []string
		for _, k := range metrics.MetricOrder {
			if v, ok := rep.Corpus[k]; ok {
				parts = append(parts, fmt.Sprintf("%q: %s", k, jsonNumber(v)))
			}
		}
		fmt.Printf("{%s}\n", strings.Join(parts, ", "))
		return nil
	}
	fmt.Printf("%d images\n", len(rep.Images))
	for _, k := range metrics.MetricOrder {
		if v, ok := rep.Corpus[k]; ok {
			fmt.Printf("%-8s %.4f\n", k, v)
		}
	}
	return nil
}

// jsonNumber writes NaN (SPICE on empty graphs) as null: JSON has no NaN.
func jsonNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
