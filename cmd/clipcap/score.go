package main

import (
	"os"

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
	var jars metrics.Options
	metrics.JarVars(fs, &jars.MeteorJar, &jars.SpiceJar)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *results == "" || *annotations == "" || fs.NArg() > 0 {
		return usagef("--results and --annotations are required (and nothing else)")
	}
	rep, err := metrics.ScoreFiles(*results, *annotations, jars)
	if err != nil {
		return err
	}
	if *perImage != "" {
		if err := rep.WritePerImage(*perImage); err != nil {
			return err
		}
	}
	if *asJSON {
		return rep.WriteCorpusJSON(os.Stdout)
	}
	return rep.WriteText(os.Stdout)
}
