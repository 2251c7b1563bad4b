// Package metrics scores captions as pycocoevalcap (the COCO caption
// evaluation toolkit) does: its PTB tokenization, BLEU-1..4, ROUGE-L and
// CIDEr-D reimplemented in Go to 1e-9 of the toolkit, and METEOR 1.5 and
// SPICE through the toolkit's own jars when the caller provides them.
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metric names, as pycocoevalcap's COCOEvalCap.eval keys them.
const (
	Bleu1  = "Bleu_1"
	Bleu2  = "Bleu_2"
	Bleu3  = "Bleu_3"
	Bleu4  = "Bleu_4"
	Meteor = "METEOR"
	RougeL = "ROUGE_L"
	CIDEr  = "CIDEr"
	Spice  = "SPICE"
)

// MetricOrder is the toolkit's order of metrics.
var MetricOrder = []string{Bleu1, Bleu2, Bleu3, Bleu4, Meteor, RougeL, CIDEr, Spice}

// Options select the Java-based metrics. A metric whose jar is not given is
// not computed and its key is absent from the report.
type Options struct {
	MeteorJar string // meteor-1.5.jar (its data/ directory beside it)
	SpiceJar  string // spice-1.0.jar (its lib/ directory beside it)
	Java      string // java executable; default "java" from PATH
	// SpiceCache is SPICE's parse cache directory; default: a temporary
	// directory removed afterwards.
	SpiceCache string
	// JarTimeout bounds one run of a jar (default 1h: SPICE parses a
	// 5000-image split in minutes, longer on a first, uncached run);
	// AnswerTimeout bounds METEOR's wait for each answer line (default 5m,
	// its start-up included). A hung JVM is killed and reported.
	JarTimeout, AnswerTimeout time.Duration
}

// Report holds corpus scores and per-image scores.
type Report struct {
	Corpus map[string]float64
	Images []ImageScores // in evaluation order
}

// ImageScores are one image's scores.
type ImageScores struct {
	ImageID ImageID
	Scores  map[string]float64
}

// MarshalJSON writes {"image_id": ..., "Bleu_1": ..., ...} like the
// toolkit's imgToEval entries.
func (s ImageScores) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	id, err := json.Marshal(s.ImageID)
	if err != nil {
		return nil, err
	}
	b.WriteString(`{"image_id":`)
	b.Write(id)
	for _, k := range MetricOrder {
		v, ok := s.Scores[k]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, ",%q:%s", k, jsonFloat(v))
	}
	b.WriteString("}")
	return []byte(b.String()), nil
}

// Score evaluates results against reference annotations as COCOEvalCap
// does. Every annotated image must have exactly one result; a result for an
// image without references is an error too. Images are evaluated in the
// order of the annotation file's images list (images listed without
// captions are skipped), then any other annotated images in order of first
// appearance; all captions are tokenized in that order, as the toolkit does.
// An empty caption tokenizes to nothing and scores 0, as in the toolkit.
func Score(results []Caption, ann *Annotations, opts Options) (*Report, error) {
	ids, refs, err := groupRefs(ann)
	if err != nil {
		return nil, err
	}
	cands, err := matchResults(ids, results)
	if err != nil {
		return nil, err
	}
	var flat []string
	for _, rs := range refs {
		flat = append(flat, rs...)
	}
	flatTok := Tokenize(flat)
	refTok := make([][]string, len(refs))
	off := 0
	for i, rs := range refs {
		refTok[i] = flatTok[off : off+len(rs)]
		off += len(rs)
	}
	return ScoreTokenized(ids, Tokenize(cands), refTok, opts)
}

// groupRefs orders the annotated images and collects their captions.
func groupRefs(ann *Annotations) ([]ImageID, [][]string, error) {
	if ann == nil || len(ann.Captions) == 0 {
		return nil, nil, fmt.Errorf("annotations: no reference captions")
	}
	index := map[string]int{}
	var ids []ImageID
	var refs [][]string
	byKey := map[string][]string{}
	firstID := map[string]ImageID{}
	var appearance []string
	for _, c := range ann.Captions {
		k := c.ImageID.key
		if _, ok := byKey[k]; !ok {
			appearance = append(appearance, k)
			firstID[k] = c.ImageID
		}
		byKey[k] = append(byKey[k], c.Caption)
	}
	add := func(k string) {
		if _, done := index[k]; done {
			return
		}
		index[k] = len(ids)
		ids = append(ids, firstID[k])
		refs = append(refs, byKey[k])
	}
	for _, im := range ann.Images {
		if _, ok := byKey[im.key]; ok {
			add(im.key)
		}
	}
	for _, k := range appearance {
		add(k)
	}
	return ids, refs, nil
}

// matchResults returns one candidate per image in ids, or an error listing
// every mismatch by image id.
func matchResults(ids []ImageID, results []Caption) ([]string, error) {
	want := make(map[string]int, len(ids))
	for i, id := range ids {
		want[id.key] = i
	}
	cands := make([]string, len(ids))
	got := make([]int, len(ids))
	var unknown, dup []string
	for _, r := range results {
		i, ok := want[r.ImageID.key]
		if !ok {
			unknown = append(unknown, r.ImageID.key)
			continue
		}
		got[i]++
		if got[i] == 2 {
			dup = append(dup, r.ImageID.key)
		}
		cands[i] = r.Caption
	}
	var missing []string
	for i, n := range got {
		if n == 0 {
			missing = append(missing, ids[i].key)
		}
	}
	var probs []string
	if len(missing) > 0 {
		probs = append(probs, fmt.Sprintf("%d annotated image(s) have no result: %s", len(missing), listIDs(missing)))
	}
	if len(dup) > 0 {
		probs = append(probs, fmt.Sprintf("%d image(s) have more than one result: %s", len(dup), listIDs(dup)))
	}
	if len(unknown) > 0 {
		probs = append(probs, fmt.Sprintf("%d result(s) for images without reference captions: %s", len(unknown), listIDs(unknown)))
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("results do not match annotations: %s", strings.Join(probs, "; "))
	}
	return cands, nil
}

// listIDs shows up to 10 ids, sorted, then a count of the rest.
func listIDs(ids []string) string {
	sort.Strings(ids)
	const show = 10
	if len(ids) <= show {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:show], ", "), len(ids)-show)
}

// ScoreTokenized scores captions already tokenized as Tokenize returns
// them: cands[i] is image ids[i]'s candidate, refs[i] its references.
func ScoreTokenized(ids []ImageID, cands []string, refs [][]string, opts Options) (*Report, error) {
	if len(ids) != len(cands) || len(ids) != len(refs) {
		return nil, fmt.Errorf("score: %d image ids, %d candidates, %d reference lists", len(ids), len(cands), len(refs))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("score: no images to score")
	}
	for i, rs := range refs {
		if len(rs) == 0 {
			return nil, fmt.Errorf("score: image %s has no reference captions", ids[i])
		}
	}
	// Check the jars and java before the native metrics, to fail fast.
	for _, j := range []struct{ metric, jar string }{{Meteor, opts.MeteorJar}, {Spice, opts.SpiceJar}} {
		if j.jar != "" {
			if _, err := jarCommand(opts, j.metric, j.jar, ""); err != nil {
				return nil, err
			}
		}
	}
	rep := &Report{Corpus: map[string]float64{}, Images: make([]ImageScores, len(ids))}
	for i, id := range ids {
		rep.Images[i] = ImageScores{ImageID: id, Scores: map[string]float64{}}
	}
	set := func(name string, corpus float64, per []float64) {
		rep.Corpus[name] = corpus
		for i, v := range per {
			rep.Images[i].Scores[name] = v
		}
	}
	b, r, c := computeNative(cands, refs)
	for k, name := range []string{Bleu1, Bleu2, Bleu3, Bleu4} {
		per := make([]float64, len(ids))
		for i := range per {
			per[i] = b.per[i][k]
		}
		set(name, b.corpus[k], per)
	}
	set(RougeL, mean(r), r)
	set(CIDEr, mean(c), c)

	if opts.MeteorJar != "" {
		corpus, per, err := meteorScore(opts, cands, refs)
		if err != nil {
			return nil, err
		}
		set(Meteor, corpus, per)
	}
	if opts.SpiceJar != "" {
		corpus, per, err := spiceScore(opts, cands, refs)
		if err != nil {
			return nil, err
		}
		set(Spice, corpus, per)
	}
	return rep, nil
}

// jsonFloat writes v for JSON, NaN and infinities as null (JSON has no
// NaN; SPICE reports NaN for an image whose graphs are empty).
func jsonFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "null"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

type bleuResult struct {
	corpus [maxN]float64
	per    [][maxN]float64
}

// computeNative runs BLEU, ROUGE-L and CIDEr-D over tokenized captions.
// ROUGE-L (its own word ids) runs beside the n-gram metrics, and the
// per-image work of each is split across CPUs.
func computeNative(cands []string, refs [][]string) (bleuResult, []float64, []float64) {
	rouge := make([]float64, len(cands))
	done := make(chan struct{})
	go func() {
		defer close(done)
		in := newInterner(0)
		cw := make([][]int32, len(cands))
		rw := make([][][]int32, len(refs))
		for i := range cands {
			cw[i] = in.rougeWords(cands[i])
			rw[i] = make([][]int32, len(refs[i]))
			for j, r := range refs[i] {
				rw[i][j] = in.rougeWords(r)
			}
		}
		parallel(len(cands), func(lo, hi int) {
			var row []int
			for i := lo; i < hi; i++ {
				rouge[i] = rougeL(cw[i], rw[i], &row)
			}
		})
	}()

	chars := 0
	for i := range cands {
		chars += len(cands[i])
		for _, r := range refs[i] {
			chars += len(r)
		}
	}
	in := newInterner(chars)
	cs := make([]sentence, len(cands))
	rs := make([][]sentence, len(refs))
	for i := range cands {
		cs[i] = in.sentence(cands[i])
		rs[i] = make([]sentence, len(refs[i]))
		for j, r := range refs[i] {
			rs[i][j] = in.sentence(r)
		}
	}
	stats := make([]bleuStats, len(cands))
	parallel(len(cands), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			stats[i] = bleuImage(cs[i], rs[i])
		}
	})
	var b bleuResult
	b.corpus, b.per = bleu(stats)
	c := cider(cs, rs, len(in.order))
	<-done
	return b, rouge, c
}

// parallel runs f over [0, n) in contiguous chunks, one per CPU.
func parallel(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// WritePerImage writes the per-image scores as JSON.
func (r *Report) WritePerImage(path string) error {
	b, err := json.Marshal(r.Images)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// WriteCorpusJSON writes the corpus scores as one JSON object with
// pycocoevalcap's keys in its order; metrics not computed are absent.
func (r *Report) WriteCorpusJSON(w io.Writer) error {
	var parts []string
	for _, k := range MetricOrder {
		if v, ok := r.Corpus[k]; ok {
			parts = append(parts, fmt.Sprintf("%q: %s", k, jsonNumber(v)))
		}
	}
	_, err := fmt.Fprintf(w, "{%s}\n", strings.Join(parts, ", "))
	return err
}

// WriteText writes the image count and one "metric value" line per score.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%d images\n", len(r.Images))
	for _, k := range MetricOrder {
		if v, ok := r.Corpus[k]; ok {
			if _, err := fmt.Fprintf(w, "%-8s %.4f\n", k, v); err != nil {
				return err
			}
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
