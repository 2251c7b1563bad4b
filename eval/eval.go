// Package eval is the evaluation runner: it captions every image of a split
// through the one inference path (package caption), scores the captions
// with pycocoevalcap's metrics (package eval/metrics) and writes
// results.json, metrics.json, per_image.json and report.md.
package eval

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/eval/metrics"
	"github.com/clipcap/clipcap/internal/progress"
	"github.com/clipcap/clipcap/model/generate"
)

// Options of one evaluation run.
type Options struct {
	Model       string // model directory
	Features    string // feature store (embeddings of the split's images)
	Verify      bool   // hash every shard of Features, not only changed ones
	Images      string // or: image directory, files named by the annotations
	Annotations string // COCO captions file; references (else the store's captions)
	Split       string
	Out         string // output directory
	Decode      generate.Options
	Batch       int // images per generation call (default 16)
	Limit       int // caption only the first Limit images (0: all)
	MeteorJar   string
	SpiceJar    string
	// Dataset picks the paper's row: coco, conceptual or nocaps. Default:
	// nocaps when images carry domains, else the store's dataset label, else
	// coco with --images.
	Dataset   string
	CLIP      string       // CLIP weights or name for --images (default: the model's)
	Precision string       // GPT-2 and mapper weights: fp32, bf16 or int8 ("" = the model's)
	Device    gotch.Device // zero value: CPU
	Progress  io.Writer    // progress bar destination (nil: none)
	// RawText writes captions without decode's clean-up (caption.Options.RawText).
	RawText bool
}

// Domains are nocaps' image domains, in report order.
var Domains = []string{"in-domain", "near-domain", "out-domain"}

// Summary is what a run produced.
type Summary struct {
	Results []metrics.Caption
	Report  *metrics.Report
	// ByDomain holds nocaps scores per domain and "overall"; nil elsewhere.
	ByDomain map[string]*metrics.Report
	Dataset  string
	Elapsed  time.Duration // generation time
}

// Run captions the split, scores it and writes the output files.
func Run(ctx context.Context, opt Options) (*Summary, error) {
	if opt.Split == "" {
		return nil, fmt.Errorf("eval: --split is required")
	}
	if opt.Out == "" {
		return nil, fmt.Errorf("eval: --out is required")
	}
	if (opt.Features == "") == (opt.Images == "") {
		return nil, fmt.Errorf("eval: give exactly one of --features STORE and --images DIR")
	}
	if opt.Batch <= 0 {
		opt.Batch = 16
	}
	if opt.Device.Name == "" {
		opt.Device = gotch.CPU // the zero Device is not one libtorch knows
	}
	in, err := loadInputs(opt)
	if err != nil {
		return nil, err
	}
	if in.store != nil {
		defer in.store.Close()
	}
	copt := caption.Options{Device: opt.Device, CLIP: opt.CLIP, RawText: opt.RawText, Precision: opt.Precision}
	if opt.Features != "" {
		copt.CLIP = "-" // embeddings given: no encoder needed
	}
	c, err := caption.Load(opt.Model, copt)
	if err != nil {
		return nil, err
	}
	if c.PrecisionNote != "" && opt.Progress != nil {
		fmt.Fprintln(opt.Progress, "precision: "+c.PrecisionNote)
	}
	if in.store != nil {
		if want := int(c.Model.Cfg.Mapper.ClipDim); in.store.Dim() != want {
			return nil, fmt.Errorf("feature store %s holds %d-dim embeddings (%s), model %s expects %d (%s): extract the features with the model's CLIP",
				opt.Features, in.store.Dim(), in.store.Manifest.CLIPModel, opt.Model, want, c.Config.CLIP.Name)
		}
	} else if c.CLIP == nil {
		return nil, fmt.Errorf("model %s has no CLIP encoder to caption --images with: give --clip, or evaluate --features", opt.Model)
	}

	start := time.Now()
	bar := progress.New(opt.Progress, int64(len(in.items)), progress.Options{Desc: "eval", Unit: "images"})
	var texts []string
	if in.store != nil {
		texts, err = captionStore(c, in, opt, bar)
	} else {
		texts, err = captionFiles(ctx, c, in, opt, bar)
	}
	bar.Finish()
	if err != nil {
		return nil, err
	}
	sum := &Summary{Elapsed: time.Since(start), Dataset: in.dataset}
	if opt.Dataset != "" {
		sum.Dataset = opt.Dataset
	} else if sum.Dataset == "" && opt.Images != "" {
		sum.Dataset = "coco"
	}
	for i, it := range in.items {
		sum.Results = append(sum.Results, metrics.Caption{ImageID: it.ID, Caption: texts[i]})
	}
	if err := score(sum, in, opt); err != nil {
		return nil, err
	}
	return sum, writeOutputs(sum, in, opt, c)
}

// captionStore captions the store rows in batches.
func captionStore(c *caption.Captioner, in *inputs, opt Options, bar *progress.Bar) ([]string, error) {
	texts := make([]string, 0, len(in.items))
	d := in.store.Dim()
	for lo := 0; lo < len(in.items); lo += opt.Batch {
		hi := min(lo+opt.Batch, len(in.items))
		emb := make([][]float32, hi-lo)
		for i := range emb {
			emb[i] = make([]float32, d)
			if err := in.store.Embedding(in.items[lo+i].Row, emb[i]); err != nil {
				return nil, err
			}
		}
		caps, err := c.FromEmbeddings(emb, opt.Decode)
		if err != nil {
			return nil, err
		}
		for _, cp := range caps {
			texts = append(texts, cleanText(cp.Text))
		}
		bar.Add(int64(hi - lo))
	}
	return texts, nil
}

// captionFiles captions the image files through the inference path's
// files -> captions pipeline.
func captionFiles(ctx context.Context, c *caption.Captioner, in *inputs, opt Options, bar *progress.Bar) ([]string, error) {
	files := make([]string, len(in.items))
	for i, it := range in.items {
		files[i] = it.Path
	}
	texts := make([]string, 0, len(in.items))
	err := c.FromFiles(ctx, files, opt.Batch, opt.Decode, func(i int, cp caption.Caption) error {
		texts = append(texts, cleanText(cp.Text))
		bar.Add(1)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return texts, nil
}

// cleanText is the caption as results.json will hold it: trimmed, and
// each byte that is not UTF-8 (a byte-level BPE token cut inside a
// character) made U+FFFD as encoding/json would, so the captions scored are
// the captions written.
func cleanText(s string) string {
	s = strings.TrimSpace(s)
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// score runs the metrics on all images, and for nocaps on each domain's
// images separately (as the nocaps evaluation does).
func score(sum *Summary, in *inputs, opt Options) error {
	mopt := metrics.Options{MeteorJar: opt.MeteorJar, SpiceJar: opt.SpiceJar}
	rep, err := metrics.Score(sum.Results, in.refs, mopt)
	if err != nil {
		return err
	}
	sum.Report = rep
	hasDomain := false
	for _, it := range in.items {
		hasDomain = hasDomain || it.Domain != ""
	}
	if !hasDomain {
		return nil
	}
	sum.ByDomain = map[string]*metrics.Report{"overall": rep}
	for _, d := range Domains {
		res, refs := subset(sum.Results, in, d)
		if len(res) == 0 {
			continue
		}
		r, err := metrics.Score(res, refs, mopt)
		if err != nil {
			return fmt.Errorf("scoring %s: %w", d, err)
		}
		sum.ByDomain[d] = r
	}
	return nil
}

// subset keeps the results and references of one domain's images.
func subset(results []metrics.Caption, in *inputs, domain string) ([]metrics.Caption, *metrics.Annotations) {
	keep := map[string]bool{}
	var res []metrics.Caption
	for i, it := range in.items {
		if it.Domain == domain {
			keep[it.ID.String()] = true
			res = append(res, results[i])
		}
	}
	refs := &metrics.Annotations{}
	for _, c := range in.refs.Captions {
		if keep[c.ImageID.String()] {
			refs.Captions = append(refs.Captions, c)
		}
	}
	for _, id := range in.refs.Images {
		if keep[id.String()] {
			refs.Images = append(refs.Images, id)
		}
	}
	return res, refs
}
