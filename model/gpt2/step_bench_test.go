package gpt2_test

import (
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkDecodeStep splits one batch-1 decoding step of GPT-2 small
// (random weights, 20 cached positions) into the transformer blocks and the
// LM head, to show where a token's time goes, per precision.
func BenchmarkDecodeStep(b *testing.B) {
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), gpt2.Presets["gpt2"])
	if err != nil {
		b.Fatal(err)
	}
	store.SetTrainable("", false)
	for _, p := range []nn.Precision{nn.FP32, nn.BF16, nn.Int8} {
		if _, err := m.SetPrecision(p); err != nil {
			b.Fatal(err)
		}
		b.Run(string(p), func(b *testing.B) { decodeStep(b, m) })
	}
	m.SetPrecision(nn.FP32)
}

func decodeStep(b *testing.B, m *gpt2.Model) {
	torchrt.NoGrad(func() {
		cache := m.NewCache(1, 64, gotch.CPU)
		x := ts.MustRandn([]int64{1, 20, 768}, gotch.Float, gotch.CPU)
		h, _ := m.Forward(x, nil, cache, false)
		h.MustDrop()
		one := ts.MustRandn([]int64{1, 1, 768}, gotch.Float, gotch.CPU)
		var blocks, head time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			cache.Len = 20
			t0 := time.Now()
			h, err := m.Forward(one, nil, cache, false)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			l := m.Logits(h)
			t2 := time.Now()
			l.MustDrop()
			h.MustDrop()
			blocks += t1.Sub(t0)
			head += t2.Sub(t1)
		}
		b.ReportMetric(float64(blocks.Microseconds())/float64(b.N)/1e3, "blocks-ms")
		b.ReportMetric(float64(head.Microseconds())/float64(b.N)/1e3, "lmhead-ms")
	})
}
