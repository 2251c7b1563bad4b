package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/eval/metrics"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/mapper"
)

// Output file names inside --out.
const (
	ResultsFile    = "results.json"    // COCO results: [{"image_id", "caption"}]
	MetricsFile    = "metrics.json"    // corpus scores, pycocoevalcap's keys
	PerImageFile   = "per_image.json"  // per-image scores, as the toolkit's imgToEval
	ReferencesFile = "references.json" // the references scored, COCO captions format
	DomainsFile    = "domains.json"    // nocaps: scores per domain and overall
	ReportFile     = "report.md"
)

// paperRow is a published result of the ClipCap paper (arXiv 2111.09734),
// in percent as the paper prints it.
type paperRow struct {
	Setting string
	Scores  map[string]float64
}

// paperRows are the paper's numbers, keyed by dataset and mapper type.
var paperRows = map[string]paperRow{
	"coco/mlp": {"COCO Karpathy test, MLP mapper + GPT-2 fine-tuning",
		map[string]float64{metrics.Bleu4: 32.15, metrics.Meteor: 27.1, metrics.CIDEr: 108.35, metrics.Spice: 20.12}},
	"coco/transformer": {"COCO Karpathy test, transformer mapper, GPT-2 frozen",
		map[string]float64{metrics.Bleu4: 33.53, metrics.Meteor: 27.45, metrics.CIDEr: 113.08, metrics.Spice: 21.05}},
	"conceptual/mlp": {"Conceptual Captions val, MLP mapper + GPT-2 fine-tuning",
		map[string]float64{metrics.RougeL: 26.71, metrics.CIDEr: 87.26, metrics.Spice: 18.5}},
}

// paperNocaps is the paper's nocaps near-domain CIDEr (MLP + GPT-2 tuning).
const paperNocaps = 67.69

var metricNames = map[string]string{
	metrics.Bleu1: "BLEU-1", metrics.Bleu2: "BLEU-2", metrics.Bleu3: "BLEU-3", metrics.Bleu4: "BLEU-4",
	metrics.Meteor: "METEOR", metrics.RougeL: "ROUGE-L", metrics.CIDEr: "CIDEr-D", metrics.Spice: "SPICE",
}

// writeOutputs writes every output file atomically.
func writeOutputs(sum *Summary, in *inputs, opt Options, c *caption.Captioner) error {
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return err
	}
	refImgs := make([]map[string]metrics.ImageID, len(in.refs.Images))
	for i, id := range in.refs.Images {
		refImgs[i] = map[string]metrics.ImageID{"id": id}
	}
	files := []struct {
		name string
		v    any
	}{
		{ResultsFile, sum.Results},
		{PerImageFile, sum.Report.Images},
		{ReferencesFile, map[string]any{"images": refImgs, "annotations": in.refs.Captions}},
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tensorfile.WriteBytesAtomic(filepath.Join(opt.Out, f.name), append(b, '\n')); err != nil {
			return err
		}
	}
	if err := tensorfile.WriteBytesAtomic(filepath.Join(opt.Out, MetricsFile), []byte(corpusJSON(sum.Report.Corpus)+"\n")); err != nil {
		return err
	}
	if sum.ByDomain != nil {
		var parts []string
		for _, d := range append(append([]string{}, Domains...), "overall") {
			if r, ok := sum.ByDomain[d]; ok {
				parts = append(parts, fmt.Sprintf("%q: %s", d, corpusJSON(r.Corpus)))
			}
		}
		if err := tensorfile.WriteBytesAtomic(filepath.Join(opt.Out, DomainsFile), []byte("{"+strings.Join(parts, ", ")+"}\n")); err != nil {
			return err
		}
	}
	return tensorfile.WriteBytesAtomic(filepath.Join(opt.Out, ReportFile), []byte(reportMarkdown(sum, in, opt, c)))
}

// corpusJSON writes corpus scores with pycocoevalcap's keys in its order;
// metrics not computed are absent, NaN is null.
func corpusJSON(corpus map[string]float64) string {
	var parts []string
	for _, k := range metrics.MetricOrder {
		if v, ok := corpus[k]; ok {
			parts = append(parts, fmt.Sprintf("%q: %s", k, jsonNumber(v)))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func jsonNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func pct(corpus map[string]float64, k string) string {
	v, ok := corpus[k]
	if !ok {
		return "not computed"
	}
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", 100*v)
}

// reportMarkdown renders report.md: setting, scores beside the paper's,
// nocaps domains, and sample captions with their references.
func reportMarkdown(sum *Summary, in *inputs, opt Options, c *caption.Captioner) string {
	var b strings.Builder
	cfg := c.Model.Cfg
	dec := c.DecodeOptions(opt.Decode)
	fmt.Fprintf(&b, "# ClipCap evaluation: %s, split %q\n\n", orUnknown(sum.Dataset), opt.Split)
	fmt.Fprintf(&b, "- model: `%s` (%s mapper, prefix length %d, GPT-2 %d-d × %d layers, CLIP %s)\n",
		opt.Model, cfg.Mapper.Kind, cfg.Mapper.PrefixLength, cfg.GPT2.NEmbd, cfg.GPT2.NLayer, orUnknown(c.Config.CLIP.Name))
	if opt.Features != "" {
		fmt.Fprintf(&b, "- images: %d from feature store `%s`%s\n", len(in.items), opt.Features, limitNote(opt))
	} else {
		fmt.Fprintf(&b, "- images: %d from `%s`%s\n", len(in.items), opt.Images, limitNote(opt))
	}
	fmt.Fprintf(&b, "- references: %d captions from %s\n", len(in.refs.Captions), in.refFrom)
	fmt.Fprintf(&b, "- decoding: %s\n", describeDecode(dec))
	if s := sum.Elapsed.Seconds(); s > 0 {
		fmt.Fprintf(&b, "- generation: %.1f s (%.2f images/s)\n", s, float64(len(in.items))/s)
	}

	fmt.Fprintf(&b, "\n## Scores (×100)\n\n")
	key := sum.Dataset + "/" + string(cfg.Mapper.Kind)
	row, published := paperRows[key]
	if published {
		fmt.Fprintf(&b, "| metric | ours | paper (%s) |\n|---|---|---|\n", row.Setting)
	} else {
		fmt.Fprintf(&b, "| metric | ours |\n|---|---|\n")
	}
	for _, k := range metrics.MetricOrder {
		line := fmt.Sprintf("| %s | %s |", metricNames[k], pct(sum.Report.Corpus, k))
		if published {
			if v, ok := row.Scores[k]; ok {
				line += fmt.Sprintf(" %.2f |", v)
			} else {
				line += " — |"
			}
		}
		b.WriteString(line + "\n")
	}
	switch {
	case published:
	case sum.Dataset == "nocaps" && cfg.Mapper.Kind == mapper.MLP:
		fmt.Fprintf(&b, "\nThe paper reports nocaps by domain: near-domain CIDEr %.2f (below).\n", paperNocaps)
	default:
		fmt.Fprintf(&b, "\nThe paper has no published number for %s with the %s mapper.\n", orUnknown(sum.Dataset), cfg.Mapper.Kind)
	}
	var missing []string
	if opt.MeteorJar == "" {
		missing = append(missing, "METEOR (give --meteor-jar)")
	}
	if opt.SpiceJar == "" {
		missing = append(missing, "SPICE (give --spice-jar)")
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "\nNot computed: %s.\n", strings.Join(missing, ", "))
	}

	if sum.ByDomain != nil {
		fmt.Fprintf(&b, "\n## nocaps domains (×100)\n\n| domain | images | BLEU-4 | METEOR | ROUGE-L | CIDEr-D | SPICE |\n|---|---|---|---|---|---|---|\n")
		for _, d := range append(append([]string{}, Domains...), "overall") {
			r, ok := sum.ByDomain[d]
			if !ok {
				continue
			}
			cider := pct(r.Corpus, metrics.CIDEr)
			if d == "near-domain" && cfg.Mapper.Kind == mapper.MLP {
				cider += fmt.Sprintf(" (paper %.2f)", paperNocaps)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", d, len(r.Images), pct(r.Corpus, metrics.Bleu4),
				pct(r.Corpus, metrics.Meteor), pct(r.Corpus, metrics.RougeL), cider, pct(r.Corpus, metrics.Spice))
		}
		if cfg.Mapper.Kind != mapper.MLP {
			fmt.Fprintf(&b, "\nThe paper's nocaps number (near-domain CIDEr %.2f) is for the MLP mapper; no published number for the %s mapper.\n", paperNocaps, cfg.Mapper.Kind)
		}
	}

	fmt.Fprintf(&b, "\n## Samples\n\n")
	refs := map[string][]string{}
	for _, c := range in.refs.Captions {
		k := c.ImageID.String()
		refs[k] = append(refs[k], c.Caption)
	}
	for _, r := range sum.Results[:min(5, len(sum.Results))] {
		fmt.Fprintf(&b, "- image %s: **%s**\n", r.ImageID, mdEscape(r.Caption))
		for _, ref := range refs[r.ImageID.String()][:min(3, len(refs[r.ImageID.String()]))] {
			fmt.Fprintf(&b, "  - %s\n", mdEscape(ref))
		}
	}
	return b.String()
}

func describeDecode(o generate.Options) string {
	s := string(o.Strategy)
	switch o.Strategy {
	case generate.Beam:
		s += fmt.Sprintf(" search, beam %d", o.BeamSize)
	case generate.Sample:
		s += fmt.Sprintf(" (temperature %g, top-k %d, top-p %g, seed %d)", o.Temperature, o.TopK, o.TopP, o.Seed)
	}
	return fmt.Sprintf("%s, at most %d tokens, stop tokens %v", s, o.MaxTokens, o.StopTokens)
}

func limitNote(opt Options) string {
	if opt.Limit > 0 {
		return fmt.Sprintf(" (at most the first %d: --limit)", opt.Limit)
	}
	return ""
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown dataset"
	}
	return s
}

// mdEscape keeps a caption from turning into Markdown markup.
var mdEscaper = strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "|", "\\|", "<", "&lt;", "\n", " ")

func mdEscape(s string) string {
	if s == "" {
		return "(empty)"
	}
	return mdEscaper.Replace(s)
}
