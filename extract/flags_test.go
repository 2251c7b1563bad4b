package extract

import (
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func parseExtractFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	var f Flags
	flagtest.Parse(t, f.RegisterFlags, args...)
	return &f
}

// The flags land in Options' fields; the defaults are the documented ones.
func TestFlagsSetOptions(t *testing.T) {
	f := parseExtractFlags(t)
	if !f.RestvalAsTrain || f.ShardSize != 4096 || f.Batch != 32 || f.MaxPixels != DefaultMaxPixels || f.Device != "auto" ||
		f.Fetch.Workers != 16 || f.Fetch.PerHost != 4 || f.Fetch.Timeout != 30*time.Second || f.Fetch.MaxBytes != 32<<20 {
		t.Errorf("defaults: %+v", f)
	}
	f = parseExtractFlags(t, "--dataset", "jsonl", "--input", "in.jsonl", "--clip", "c.pt", "--out", "st", "--shard", "1/3",
		"--device", "cpu", "--batch", "8", "--float16", "--restval-as-train=false", "--download", "--per-host", "2", "--max-pixels", "-1")
	opt, err := f.RunOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Dataset != "jsonl" || opt.Input != "in.jsonl" || opt.CLIP != "c.pt" || opt.Out != "st" || opt.ShardIndex != 1 || opt.ShardCount != 3 ||
		opt.Device != gotch.CPU || opt.Batch != 8 || !opt.Float16 || opt.RestvalAsTrain || opt.MaxPixels != -1 {
		t.Errorf("options: %+v", opt)
	}
	if opt.Download == nil || opt.Download.PerHost != 2 || opt.Download.Workers != 16 {
		t.Errorf("--download options: %+v", opt.Download)
	}
	f.Download = false
	if opt, _ := f.RunOptions(); opt.Download != nil {
		t.Error("without --download the options ask for a download")
	}
}

func TestFlagsRejectBadShardAndDevice(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--shard 3/3", `--shard "3/3": want K/N with 0 <= K < N`},
		{"--shard x", `--shard "x"`},
		{"--device gpu", `device "gpu"`},
	} {
		f := parseExtractFlags(t, strings.Fields(c.args)...)
		if _, err := f.RunOptions(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.args, err, c.want)
		}
	}
}
