// Package extract pre-computes CLIP image embeddings for a dataset into a
// feature store (data/featstore): `clipcap extract`.
//
// Decoding and preprocessing run on parallel workers (imageproc.Pipeline)
// and feed batches through a bounded channel to one encoder goroutine, so
// the encoder does not wait while images are ready. Bad inputs (missing,
// corrupt, truncated, too many pixels, not an image) are recorded in the
// manifest with their reason and skipped. The store commits a shard every
// ShardSize inputs; a killed run resumes after its last committed shard, and
// batches never straddle a shard boundary, so the resumed store is
// byte-identical to an uninterrupted one.
package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/clipcap/clipcap/internal/progress"
	"github.com/clipcap/clipcap/internal/torchrt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/datasets"
	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/model/clip"
)

// Options configure Run; the CLI flags map onto them one to one.
type Options struct {
	Dataset        string // a datasets.Formats name
	Input          string // annotation file, TSV, JSONL or image folder
	Images         string // images root (datasets.Options.Images)
	Split          string
	RestvalAsTrain bool
	CLIP           string // registry name or weights file
	Cache          string // download cache for registry names ("" = default)
	Out            string // store directory
	ShardIndex     int    // --shard K/N: items with index % N == K
	ShardCount     int
	ShardSize      int  // inputs per committed store shard (4096)
	Batch          int  // images per encoder batch (32)
	Workers        int  // decode/preprocess workers (GOMAXPROCS)
	Float16        bool // store embeddings as F16
	// Half runs CLIP in fp16 as clip.load does on CUDA (convert_weights) and
	// stores the fp16 embeddings it gives, as the original's parse_coco.py
	// and parse_conceptual.py do. CUDA only.
	Half bool
	// NoAddPeriod keeps Conceptual Captions captions without the trailing
	// period the original adds (datasets.Options.NoAddPeriod).
	NoAddPeriod bool
	Limit       int // only the first Limit items of the dataset (before sharding)
	Device      gotch.Device
	// Download fetches URL images (Conceptual Captions) before extracting;
	// nil extracts what is on disk. Its Dir defaults to the images root.
	Download *datasets.DownloadOptions
	Stderr   io.Writer // progress (a bar on terminals, else a line per 10%) and summary; default os.Stderr

	// MaxPixels refuses images declaring more pixels, from their header,
	// before decoding (0 = imageproc.UntrustedMaxPixels; negative = PIL's
	// limit): dataset images come from arbitrary hosts.
	MaxPixels int
}

func (o Options) maxPixels() int {
	switch {
	case o.MaxPixels == 0:
		return imageproc.UntrustedMaxPixels
	case o.MaxPixels < 0:
		return imageproc.DefaultMaxPixels
	}
	return o.MaxPixels
}

// Summary reports a run.
type Summary struct {
	Items    int // items of this shard
	Resumed  int // inputs skipped because a previous run committed them
	Images   int // embedded by this run
	Captions int
	Rejected int
	Elapsed  time.Duration
	Load     time.Duration // loading the CLIP weights (part of Elapsed)
	// Encode is the time the encoder spent encoding; EncoderWait the time
	// it waited for decoded batches (decode/preprocess-bound when large).
	Encode, EncoderWait time.Duration
}

// batchDelay slows the encoder down in tests (kill -9 timing).
var batchDelay time.Duration

// Items reads the dataset and returns the items this shard processes, each
// with its index in the full (limited) list.
func Items(opt Options) ([]datasets.Item, []int, error) {
	items, err := allItems(opt)
	if err != nil {
		return nil, nil, err
	}
	return shardItems(opt, items)
}

// allItems is the dataset, limited, before sharding.
func allItems(opt Options) ([]datasets.Item, error) {
	items, err := datasets.Read(opt.Dataset, opt.Input, datasets.Options{Images: opt.Images, Split: opt.Split, RestvalAsTrain: opt.RestvalAsTrain, NoAddPeriod: opt.NoAddPeriod})
	if err != nil {
		return nil, err
	}
	if opt.Limit > 0 && len(items) > opt.Limit {
		items = items[:opt.Limit]
	}
	return items, nil
}

func shardItems(opt Options, items []datasets.Item) ([]datasets.Item, []int, error) {
	if opt.ShardCount < 0 || (opt.ShardCount > 0 && (opt.ShardIndex < 0 || opt.ShardIndex >= opt.ShardCount)) {
		return nil, nil, fmt.Errorf("shard %d/%d: want 0 <= K < N", opt.ShardIndex, opt.ShardCount)
	}
	var out []datasets.Item
	var idx []int
	for i, it := range items {
		if opt.ShardCount == 0 || i%opt.ShardCount == opt.ShardIndex {
			out = append(out, it)
			idx = append(idx, i)
		}
	}
	return out, idx, nil
}

// Run extracts the dataset (or its shard) into opt.Out.
func Run(ctx context.Context, opt Options) (Summary, error) {
	start := time.Now()
	if opt.Stderr == nil {
		opt.Stderr = os.Stderr
	}
	if opt.Batch <= 0 {
		opt.Batch = 32
	}
	if opt.ShardSize <= 0 {
		opt.ShardSize = 4096
	}
	if opt.Out == "" {
		return Summary{}, fmt.Errorf("no --out store")
	}
	if opt.Half && !opt.Device.IsCuda() {
		return Summary{}, fmt.Errorf("--half runs CLIP in fp16, which needs a CUDA device (libtorch has no fp16 kernels for it on the CPU); use --device cuda, or --float16 to only store fp16")
	}
	all, err := allItems(opt)
	if err != nil {
		return Summary{}, err
	}
	items, idx, err := shardItems(opt, all)
	if err != nil {
		return Summary{}, err
	}
	inputs, err := fingerprint(opt, all)
	if err != nil {
		return Summary{}, err
	}
	if opt.Download != nil {
		d := *opt.Download
		if d.Dir == "" {
			d.Dir = imagesRoot(opt)
		}
		st, err := datasets.Download(ctx, items, d)
		if err != nil {
			return Summary{}, fmt.Errorf("download: %w", err)
		}
		fmt.Fprintf(opt.Stderr, "download: %s\n", st)
	}
	loadStart := time.Now()
	model, name, err := loadCLIP(ctx, opt.CLIP, opt.Cache, opt.Device, opt.Half, opt.Stderr)
	loadTime := time.Since(loadStart)
	if err != nil {
		return Summary{}, err
	}
	cfg := model.Config
	meta := featstore.Meta{CLIPModel: name, Preprocess: Preprocess(cfg.InputResolution),
		Dataset: opt.Dataset, EmbedDim: int(cfg.EmbedDim), Float16: opt.Float16 || opt.Half, ShardInputs: opt.ShardSize,
		ShardIndex: opt.ShardIndex, ShardCount: opt.ShardCount, Inputs: inputs}
	if opt.Half {
		meta.CLIPPrecision = "fp16"
	}
	if opt.Dataset == "conceptual" {
		add := !opt.NoAddPeriod
		meta.AddPeriod = &add
	}
	w, err := featstore.Create(opt.Out, meta)
	if err != nil {
		return Summary{}, err
	}
	defer w.Abort() // an error below leaves the store resumable
	done := w.InputsDone()
	if done > len(items) {
		return Summary{}, fmt.Errorf("feature store %s already covers %d inputs but this shard has %d; was it made from another dataset, --split or --limit?", opt.Out, done, len(items))
	}
	sum := Summary{Items: len(items), Resumed: done, Load: loadTime}
	failed := downloadFailures(opt, items)
	e := &extractor{opt: opt, model: model, w: w, items: items, idx: idx, done: done, failed: failed,
		bar: progress.New(opt.Stderr, int64(len(items)), progress.Options{Desc: "extract", Unit: "images", Done: int64(done)}), sum: &sum}
	if err := e.run(ctx); err != nil {
		return sum, err
	}
	if err := w.Close(); err != nil {
		return sum, err
	}
	e.bar.Finish()
	sum.Elapsed = time.Since(start)
	fmt.Fprintln(opt.Stderr, sum.line(opt.Out))
	return sum, nil
}

func imagesRoot(opt Options) string {
	if opt.Images != "" {
		return opt.Images
	}
	if st, err := os.Stat(opt.Input); err == nil && st.IsDir() {
		return opt.Input
	}
	return filepath.Dir(opt.Input)
}

// downloadFailures gives the recorded download failure of URL items, so a
// missing image is rejected with the download's reason.
func downloadFailures(opt Options, items []datasets.Item) map[string]string {
	for _, it := range items {
		if it.URL != "" {
			dir := imagesRoot(opt)
			if opt.Download != nil && opt.Download.Dir != "" {
				dir = opt.Download.Dir
			}
			f, _ := datasets.ReadFailures(filepath.Join(dir, datasets.FailuresFile))
			return f
		}
	}
	return nil
}

func (s Summary) line(out string) string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Images) / s.Elapsed.Seconds()
	}
	resumed := ""
	if s.Resumed > 0 {
		resumed = fmt.Sprintf(" (resumed after %d inputs)", s.Resumed)
	}
	return fmt.Sprintf("extract: %d images, %d captions, %d rejected%s in %.1fs (%.1f images/s; encoder busy %.1fs, waiting %.1fs) -> %s",
		s.Images, s.Captions, s.Rejected, resumed, s.Elapsed.Seconds(), rate, s.Encode.Seconds(), s.EncoderWait.Seconds(), out)
}

// entry is one input of a batch: a decoded image (pixels at row) or a
// rejection.
type entry struct {
	item   datasets.Item
	index  int // in the dataset
	row    int // in the batch's pixels; -1 when rejected
	reason string
}

type batch struct {
	entries []entry
	pixels  []float32
	images  int
}

type extractor struct {
	opt    Options
	model  *clip.Model
	w      *featstore.Writer
	items  []datasets.Item
	idx    []int
	done   int
	failed map[string]string
	bar    *progress.Bar
	sum    *Summary
}

func (e *extractor) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := int(e.model.Config.InputResolution)
	per := 3 * n * n
	todo := e.items[e.done:]
	var inputs []imageproc.Input
	var inputItem []int
	for j, it := range todo {
		if it.Path != "" {
			inputs = append(inputs, imageproc.Input{Name: it.Path})
			inputItem = append(inputItem, j)
		}
	}
	// Two batches in flight: one being encoded, one filling up.
	ch := make(chan *batch, 2)
	encErr := make(chan error, 1)
	go func() { encErr <- e.encodeLoop(ctx, cancel, ch) }()

	cur := &batch{}
	counted := e.done
	add := func(en entry) {
		cur.entries = append(cur.entries, en)
		counted++
		// A batch ends at a store shard boundary, so a resumed run batches
		// exactly as an uninterrupted one.
		if cur.images == e.opt.Batch || counted%e.opt.ShardSize == 0 {
			ch <- cur
			cur = &batch{}
		}
	}
	next := 0
	rejectUpTo := func(j int) {
		for ; next < j; next++ {
			it := todo[next]
			add(entry{item: it, index: e.idx[e.done+next], row: -1, reason: e.missingReason(it)})
		}
	}
	pre := imageproc.NewPreprocessor(n)
	pre.Decoder.MaxPixels = e.opt.maxPixels()
	err := (&imageproc.Pipeline{Pre: pre, Workers: e.opt.Workers}).Each(ctx, inputs, func(r imageproc.Result) error {
		j := inputItem[r.Index]
		rejectUpTo(j)
		it := todo[j]
		en := entry{item: it, index: e.idx[e.done+j], row: -1}
		if r.Err != nil {
			en.reason = strings.TrimPrefix(r.Err.Error(), it.Path+": ")
			if reason, ok := e.failed[it.ImageID]; ok && errors.Is(r.Err, fs.ErrNotExist) {
				en.reason = "download failed: " + reason
			}
		} else {
			if len(r.Pixels) != per {
				return fmt.Errorf("%s: preprocessing gave %d values, want %d", it.Path, len(r.Pixels), per)
			}
			en.row = cur.images
			cur.pixels = append(cur.pixels, r.Pixels...)
			cur.images++
		}
		next = j + 1
		add(en)
		return nil
	})
	if err == nil {
		rejectUpTo(len(todo))
		if len(cur.entries) > 0 {
			ch <- cur
		}
	}
	close(ch)
	if eerr := <-encErr; eerr != nil {
		return eerr
	}
	return err
}

func (e *extractor) missingReason(it datasets.Item) string {
	if r, ok := e.failed[it.ImageID]; ok {
		return "download failed: " + r
	}
	if it.URL != "" {
		return "not downloaded: " + it.URL
	}
	return "no image path"
}

// encodeLoop encodes batches and hands their entries to the writer in
// order. It runs on one locked OS thread: libtorch's grad mode is
// thread-local.
func (e *extractor) encodeLoop(ctx context.Context, cancel func(), ch <-chan *batch) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		if err != nil {
			cancel()
			for range ch { // let the producer finish
			}
		}
	}()
	dim := int(e.model.Config.EmbedDim)
	n := e.model.Config.InputResolution
	for {
		t0 := time.Now()
		b, ok := <-ch
		if !ok {
			return nil
		}
		e.sum.EncoderWait += time.Since(t0)
		t1 := time.Now()
		var emb []float32
		if b.images > 0 {
			if emb, err = e.encode(b, n, dim); err != nil {
				return err
			}
		}
		e.sum.Encode += time.Since(t1)
		if batchDelay > 0 {
			time.Sleep(batchDelay)
		}
		for _, en := range b.entries {
			item := en.index
			if en.row < 0 {
				input := en.item.Path
				if input == "" {
					input = en.item.URL
				}
				err = e.w.RejectEntry(featstore.Rejected{Input: input, Reason: en.reason, Item: &item})
				e.sum.Rejected++
			} else {
				err = e.w.Add(emb[en.row*dim:(en.row+1)*dim], captions(en.item, &item))
				e.sum.Images++
				e.sum.Captions += max(len(en.item.Captions), 1)
			}
			if err != nil {
				return err
			}
		}
		e.bar.Add(int64(len(b.entries)))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (e *extractor) encode(b *batch, n int64, dim int) ([]float32, error) {
	x, err := ts.NewTensorFromData(b.pixels, []int64{int64(b.images), 3, n, n})
	if err != nil {
		return nil, err
	}
	defer x.MustDrop()
	var y *ts.Tensor
	torchrt.NoGrad(func() { y, err = e.model.Encode(x) })
	if err != nil {
		return nil, err
	}
	defer y.MustDrop()
	c := y.MustContiguous(false)
	defer c.MustDrop()
	out := make([]float32, b.images*dim)
	if err := c.CopyData(out, uint(len(out))); err != nil {
		return nil, err
	}
	return out, nil
}

// captions are the store lines of an item. An image without captions (nocaps
// test, a folder without sidecars) gets one line with an empty caption, so
// its embedding row stays findable by image id; trainers skip empty captions.
func captions(it datasets.Item, item *int) []featstore.Caption {
	src := it.Path
	if src == "" {
		src = it.URL
	}
	texts := it.Captions
	if len(texts) == 0 {
		texts = []string{""}
	}
	out := make([]featstore.Caption, len(texts))
	for i, t := range texts {
		out[i] = featstore.Caption{ImageID: it.ImageID, Caption: t, Split: it.Split, Domain: it.Domain, Image: src, Item: item}
	}
	return out
}
