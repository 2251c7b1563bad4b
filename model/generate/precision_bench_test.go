package generate_test

import (
	"testing"
	"time"

	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkPrecisionDecode measures batch-1 greedy decoding of GPT-2 small
// (random weights, prefix 10, stop token off) with fp32, bf16 and int8
// weights in one run: ms/token (20 tokens less 1, best of 3), the speed-up
// over fp32, and the ratio to each precision's memory floor (the weight
// bytes a step reads over the measured read bandwidth); also batch-32
// greedy captions/s. Run with -benchtime 1x.
func BenchmarkPrecisionDecode(b *testing.B) {
	const tokens, batch = 20, 32
	m, _ := gpt2Small(b)
	run := func(n int64, max int) time.Duration {
		return timedGenerate(b, m, generate.Options{Strategy: generate.Greedy, MaxTokens: max}, n)
	}
	best := bestOf3
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
