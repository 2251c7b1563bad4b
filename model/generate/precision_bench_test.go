package generate_test

import (
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkPrecisionDecode measures batch-1 greedy decoding of GPT-2 small
// (random weights, prefix 10, stop token off) with fp32, bf16 and int8
// weights in one run: ms/token (20 tokens less 1, best of 3), the speed-up
// over fp32, and the ratio to each precision's memory floor (the weight
// bytes a step reads over the measured read bandwidth); also batch-32
// greedy captions/s. Run with -benchtime 1x.
func BenchmarkPrecisionDecode(b *testing.B) {
	const tokens, batch, prefixLen = 20, 32, 10
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), gpt2.Presets["gpt2"])
	if err != nil {
		b.Fatal(err)
	}
	store.SetTrainable("", false)
	run := func(n int64, max int) time.Duration {
		p := ts.MustRandn([]int64{n, prefixLen, 768}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(0.1), true)
		defer p.MustDrop()
		start := time.Now()
		if _, err := generate.Generate(m, p, generate.Options{Strategy: generate.Greedy, MaxTokens: max, StopTokens: []int{}}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	best := func(f func() time.Duration) time.Duration {
		d := f()
		for i := 0; i < 2; i++ {
			d = min(d, f())
		}
		return d
	}
	bw := memoryBandwidth()
	var fp32 float64
	for i := 0; i < b.N; i++ {
		for _, p := range []nn.Precision{nn.FP32, nn.BF16, nn.Int8} {
			start := time.Now()
			bytes, err := m.SetPrecision(p)
			if err != nil {
				b.Fatal(err)
			}
			convert := time.Since(start)
			run(1, 2) // warm-up
			one := best(func() time.Duration { return run(1, 1) })
			all := best(func() time.Duration { return run(1, tokens) })
			ms := float64(all-one) / float64(tokens-1) / 1e6
			floor := float64(bytes) / bw * 1e3
			if p == nn.FP32 {
				fp32 = ms
			}
			b.ReportMetric(ms, string(p)+"-ms/token")
			b.ReportMetric(floor, string(p)+"-floor-ms/token")
			b.ReportMetric(ms/floor, string(p)+"-x-floor")
			b.ReportMetric(fp32/ms, string(p)+"-speedup")
			b.ReportMetric(float64(batch)/run(batch, tokens).Seconds(), string(p)+"-batch32-img/s")
			if p != nn.FP32 {
				b.ReportMetric(convert.Seconds(), string(p)+"-convert-s")
			}
		}
	}
	m.SetPrecision(nn.FP32)
}
