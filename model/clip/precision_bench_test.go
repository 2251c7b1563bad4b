package clip

import (
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkCLIPEncodePrecision encodes one image with ViT-B/32 (random
// weights, real sizes) in fp32 and in bf16 in the same run, alternating so
// that both see the same machine load, and reports ms/image for each (best
// of 5 per round) and the bf16 speed-up. Run with -benchtime 1x.
func BenchmarkCLIPEncodePrecision(b *testing.B) {
	m, cfg := randomViTB32(b)
	x := ts.MustRandn([]int64{1, 3, cfg.InputResolution, cfg.InputResolution}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	encode := func() time.Duration {
		start := time.Now()
		y, err := m.Encode(x)
		if err != nil {
			b.Fatal(err)
		}
		y.MustDrop()
		return time.Since(start)
	}
	best := map[nn.Precision]time.Duration{}
	for i := 0; i < b.N; i++ {
		for round := 0; round < 3; round++ {
			for _, p := range []nn.Precision{nn.FP32, nn.BF16} {
				if err := m.SetPrecision(p); err != nil {
					b.Fatal(err)
				}
				encode() // warm-up: oneDNN builds its kernels on first use
				for j := 0; j < 5; j++ {
					if d := encode(); best[p] == 0 || d < best[p] {
						best[p] = d
					}
				}
			}
		}
	}
	f, h := best[nn.FP32].Seconds()*1e3, best[nn.BF16].Seconds()*1e3
	b.ReportMetric(f, "fp32-ms/image")
	b.ReportMetric(h, "bf16-ms/image")
	b.ReportMetric(f/h, "bf16-speedup")
}
