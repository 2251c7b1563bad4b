package eval

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/eval/metrics"
)

// RegisterFlags defines `clipcap eval`'s flags for Options' plain fields
// and RawText on fs (the CLI's shared flags fill Device and Decode).
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Model, "model", "", "model directory or released model name (clipcap-coco, ...)")
	fs.StringVar(&o.Features, "features", "", "feature store holding the split's CLIP embeddings")
	fs.BoolVar(&o.Verify, "verify", false, "hash every shard of --features against its manifest (default: only shards whose size or mtime changed)")
	fs.StringVar(&o.Images, "images", "", "image directory (files named by the annotations' images[].file_name)")
	fs.StringVar(&o.Annotations, "annotations", "", "COCO captions file with the references (default with --features: the store's captions)")
	fs.StringVar(&o.Split, "split", "", "split to evaluate (e.g. test, val)")
	fs.StringVar(&o.Out, "out", "", "output directory")
	fs.IntVar(&o.Batch, "batch", 16, "images per generation batch")
	fs.IntVar(&o.Limit, "limit", 0, "evaluate only the first N images of the split")
	metrics.JarVars(fs, &o.MeteorJar, &o.SpiceJar)
	fs.StringVar(&o.Dataset, "dataset", "", "coco, conceptual or nocaps: which paper row to compare with (default: inferred)")
	fs.StringVar(&o.Precision, "precision", "", "GPT-2 and mapper weights: fp32, bf16 or int8 (default: the model directory's)")
	fs.StringVar(&o.CLIP, "clip", "", "CLIP weights or OpenAI model name for --images (default: the model directory's)")
	caption.RawTextVar(fs, &o.RawText)
}

// WriteScores prints the headline corpus scores that were computed, one a
// line, and where the report of the run written to outDir is.
func (s *Summary) WriteScores(w io.Writer, outDir string) error {
	for _, k := range []string{"Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE"} {
		if v, ok := s.Report.Corpus[k]; ok {
			if _, err := fmt.Fprintf(w, "%-8s %.4f\n", k, v); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d images; report: %s\n", len(s.Results), filepath.Join(outDir, ReportFile))
	return err
}
