package clip

import (
	"fmt"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// randomViTB32 is ViT-B/32 at its real sizes with random weights.
func randomViTB32(b *testing.B) (*Model, Config) {
	b.Helper()
	cfg, err := KnownConfig("ViT-B/32")
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(nn.NewStore(gotch.CPU).Root().Sub("visual"), gotch.CPU, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return m, cfg
}

// BenchmarkEncodeViTB32 measures ViT-B/32 (random weights) at batch 8 and
// 32 and reports images/s. testdata/bench_torch.py runs the same forward
// in PyTorch for comparison.
func BenchmarkEncodeViTB32(b *testing.B) {
	m, _ := randomViTB32(b)
	for _, batch := range []int64{8, 32} {
		b.Run(fmt.Sprintf("batch%d", batch), func(b *testing.B) {
			x := ts.MustRandn([]int64{batch, 3, 224, 224}, gotch.Float, gotch.CPU)
			defer x.MustDrop()
			y, err := m.Encode(x) // warm-up: allocator and BLAS threads
			if err != nil {
				b.Fatal(err)
			}
			y.MustDrop()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				y, err := m.Encode(x)
				if err != nil {
					b.Fatal(err)
				}
				y.MustDrop()
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
