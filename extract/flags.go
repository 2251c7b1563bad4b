package extract

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clipcap/clipcap/internal/torchrt"
)

// Flags are `clipcap extract`'s command line: Run's Options plus what
// arrives as text (--shard K/N, --device) or switches a part on (--merge,
// --download with its Fetch options).
type Flags struct {
	Options
	Shard, Device   string
	Merge, Download bool
	Fetch           DownloadOptions
}

// RegisterFlags defines extract's flags on fs, with their defaults.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Dataset, "dataset", "", "dataset format: "+strings.Join(Formats, ", "))
	fs.StringVar(&f.Input, "input", "", "annotation file, TSV, JSONL or image folder")
	fs.StringVar(&f.Images, "images", "", "images root (default: the input's directory; for train_caption.json, its grandparent)")
	fs.StringVar(&f.CLIP, "clip", "", "OpenAI CLIP model name, weights file or Hugging Face / OpenCLIP directory")
	fs.StringVar(&f.Out, "out", "", "feature store directory")
	fs.StringVar(&f.Split, "split", "", "split to keep (or to label items whose file has none)")
	fs.BoolVar(&f.RestvalAsTrain, "restval-as-train", true, "count Karpathy's restval images as train")
	fs.StringVar(&f.Shard, "shard", "", "K/N: this run's part of a distributed extraction")
	fs.IntVar(&f.ShardSize, "shard-size", 4096, "inputs per committed store shard (keep it equal across resumes and merges)")
	fs.IntVar(&f.Batch, "batch", 32, "images per CLIP forward pass")
	fs.IntVar(&f.Workers, "workers", 0, "decode/preprocess workers (default: number of CPUs)")
	fs.BoolVar(&f.Float16, "float16", false, "store embeddings as float16")
	fs.BoolVar(&f.Half, "half", false, "run CLIP in fp16 as the original does on CUDA (and store the fp16 embeddings); CUDA only")
	fs.BoolVar(&f.NoAddPeriod, "no-add-period", false, "conceptual: keep captions without the trailing \".\" the original's parse_conceptual.py adds")
	fs.IntVar(&f.Limit, "limit", 0, "only the first N items of the dataset (before sharding)")
	torchrt.DeviceVar(fs, &f.Device)
	fs.StringVar(&f.Cache, "cache", "", "download cache for CLIP model names")
	fs.BoolVar(&f.Merge, "merge", false, "merge the part stores given as arguments into --out")
	fs.BoolVar(&f.Download, "download", false, "first download URL images (Conceptual Captions) into the images root")
	fs.BoolVar(&f.Fetch.RetryFailed, "retry-failed", false, "with --download: retry URLs that failed in earlier runs")
	fs.IntVar(&f.Fetch.Workers, "download-workers", 16, "with --download: concurrent downloads")
	fs.IntVar(&f.Fetch.PerHost, "per-host", 4, "with --download: concurrent requests per host")
	fs.Float64Var(&f.Fetch.Rate, "rate", 0, "with --download: requests per second per host (0: unlimited)")
	fs.DurationVar(&f.Fetch.Timeout, "timeout", 30*time.Second, "with --download: per-request timeout")
	fs.Int64Var(&f.Fetch.MaxBytes, "max-bytes", 32<<20, "with --download: largest accepted image")
	fs.IntVar(&f.MaxPixels, "max-pixels", DefaultMaxPixels, "refuse images declaring more pixels, from their header (-1: PIL's limit)")
}

// RunOptions returns the Options the flags describe, with --shard and
// --device parsed and --download's options attached when it is on.
func (f *Flags) RunOptions() (Options, error) {
	opt := f.Options
	var err error
	if opt.ShardIndex, opt.ShardCount, err = ParseShard(f.Shard); err != nil {
		return opt, err
	}
	if opt.Device, err = torchrt.ParseDevice(f.Device); err != nil {
		return opt, err
	}
	if f.Download {
		fetch := f.Fetch
		opt.Download = &fetch
	}
	return opt, nil
}

// ParseShard reads --shard "K/N" ("" = the whole dataset).
func ParseShard(s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("--shard %q: want K/N with 0 <= K < N", s)
	}
	return k, n, nil
}
