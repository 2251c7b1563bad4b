package generate_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// gpt2Small is GPT-2 small with random weights, frozen, for the decoding
// benchmarks.
func gpt2Small(b *testing.B) (*gpt2.Model, *nn.Store) {
	b.Helper()
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), gpt2.Presets["gpt2"])
	if err != nil {
		b.Fatal(err)
	}
	store.SetTrainable("", false)
	return m, store
}

// timedGenerate decodes n random prefixes of 10 positions with opt, the
// stop token off so every caption is opt.MaxTokens long, and returns the
// time it took.
func timedGenerate(b *testing.B, m *gpt2.Model, opt generate.Options, n int64) time.Duration {
	b.Helper()
	p := ts.MustRandn([]int64{n, 10, m.Cfg.NEmbd}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(0.1), true)
	defer p.MustDrop()
	opt.StopTokens = []int{}
	start := time.Now()
	res, err := generate.Generate(m, p, opt)
	if err != nil {
		b.Fatal(err)
	}
	if len(res) != int(n) || len(res[0].Tokens) != opt.MaxTokens {
		b.Fatalf("generated %d captions of %d tokens", len(res), len(res[0].Tokens))
	}
	return time.Since(start)
}

// bestOf3 is the shortest of three timings.
func bestOf3(f func() time.Duration) time.Duration {
	d := f()
	for i := 0; i < 2; i++ {
		d = min(d, f())
	}
	return d
}

// BenchmarkGenerateVsPredictPy measures our generation at GPT-2 small size
// (random weights, prefix 10, 20 tokens, stop token disabled) and, in the
// same run, testdata/bench_predict.py: the original predict.py's decoding
// re-created in PyTorch (no KV cache, one image at a time). Run with
// -benchtime 1x; it takes a few minutes, most of it in the PyTorch baseline.
func BenchmarkGenerateVsPredictPy(b *testing.B) {
	const tokens, batch = 20, 32
	m, store := gpt2Small(b)
	run := func(opt generate.Options, n int64) time.Duration { return timedGenerate(b, m, opt, n) }
	best := bestOf3
	run(generate.Options{Strategy: generate.Greedy, MaxTokens: 2}, 1) // warm-up
	var greedy1, greedy20, beam, batched time.Duration
	for i := 0; i < b.N; i++ {
		greedy1 = best(func() time.Duration { return run(generate.Options{Strategy: generate.Greedy, MaxTokens: 1}, 1) })
		greedy20 = best(func() time.Duration { return run(generate.Options{Strategy: generate.Greedy, MaxTokens: tokens}, 1) })
		beam = best(func() time.Duration { return run(generate.Options{Strategy: generate.Beam, MaxTokens: tokens}, 1) })
		batched = run(generate.Options{Strategy: generate.Greedy, MaxTokens: tokens}, batch)
	}
	rss := peakRSS() // before memoryBandwidth's 512 MB tensor raises the high-water mark
	msPerToken := float64(greedy20-greedy1) / float64(tokens-1) / 1e6
	weightBytes := float64(store.NumParams("")-m.Cfg.NPositions*m.Cfg.NEmbd) * 4 // wpe is read one row a step
	bw := memoryBandwidth()
	floorMs := weightBytes / bw * 1e3
	b.ReportMetric(msPerToken, "ms/token")
	b.ReportMetric(floorMs, "floor-ms/token")
	b.ReportMetric(msPerToken/floorMs, "x-floor")
	b.ReportMetric(greedy20.Seconds(), "greedy-s/img")
	b.ReportMetric(beam.Seconds(), "beam5-s/img")
	b.ReportMetric(float64(batch)/batched.Seconds(), "batch32-img/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MB")

	if _, err := os.Stat("/usr/bin/python3"); err != nil || os.Getenv("CLIPCAP_BENCH_NO_PYTORCH") != "" {
		return
	}
	out, err := exec.Command("/usr/bin/python3", "testdata/bench_predict.py", strconv.Itoa(tokens), strconv.Itoa(batch)).Output()
	if err != nil {
		b.Logf("PyTorch baseline failed: %v", err)
		return
	}
	var py struct {
		Greedy  float64 `json:"greedy_s_per_image"`
		Beam    float64 `json:"beam_s_per_image"`
		Batched float64 `json:"batched_greedy_images_per_s"`
		RSS     float64 `json:"peak_rss_mb"`
	}
	if err := json.Unmarshal(out, &py); err != nil {
		b.Fatalf("PyTorch baseline printed %q", out)
	}
	b.ReportMetric(py.Greedy/greedy20.Seconds(), "greedy-speedup")
	b.ReportMetric(py.Beam/beam.Seconds(), "beam5-speedup")
	b.ReportMetric(float64(batch)/batched.Seconds()/py.Batched, "batch32-speedup")
	b.ReportMetric(py.RSS, "pytorch-peak-rss-MB")
}

// memoryBandwidth measures read bandwidth in bytes/s the way decoding reads
// weights: libtorch summing a 512 MB tensor (far larger than the caches)
// with the same threads, best of 5.
func memoryBandwidth() float64 {
	const n = 128 << 20 // float32 elements
	x := ts.MustOnes([]int64{n}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	bestSec := 1e9
	for i := 0; i < 6; i++ {
		start := time.Now()
		s := x.MustSum(gotch.Float, false)
		sec := time.Since(start).Seconds()
		s.MustDrop()
		if i > 0 && sec < bestSec { // the first pass warms the pages
			bestSec = sec
		}
	}
	return 4 * n / bestSec
}

func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
