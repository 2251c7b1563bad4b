package generate_test

import (
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// BenchmarkBeam5 is one image's beam search (beam 5, 20 tokens, no stop) at
// GPT-2 small size: the beam5 figure of BenchmarkGenerateVsPredictPy without
// the rest, for profiling.
func BenchmarkBeam5(b *testing.B) {
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), gpt2.Presets["gpt2"])
	if err != nil {
		b.Fatal(err)
	}
	store.SetTrainable("", false)
	p := ts.MustRandn([]int64{1, 10, 768}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(0.1), true)
	defer p.MustDrop()
	opt := generate.Options{Strategy: generate.Beam, MaxTokens: 20, StopTokens: []int{}}
	if _, err := generate.Generate(m, p, opt); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := generate.Generate(m, p, opt); err != nil {
			b.Fatal(err)
		}
	}
}
