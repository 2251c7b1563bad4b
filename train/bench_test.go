package train

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/featstore"
)

// lcg is testdata/bench_train.py's generator, so both sides train on the
// same caption lengths and tokens.
type lcg struct{ x uint64 }

func (r *lcg) next() uint64 {
	r.x = r.x*6364136223846793005 + 1442695040888963407
	return r.x
}

func (r *lcg) uniform() float64 { return (float64(r.next()>>11) + 0.5) / (1 << 53) }

// cocoLikeCaptions: lengths 8 + Exp(mean 3.5), clamped to [5, 60] (mean
// ~11.5, COCO's long tail), token ids in [1, vocab).
func cocoLikeCaptions(n, vocab int, seed uint64) [][]int {
	lr, tr := &lcg{seed}, &lcg{seed*31 + 1}
	out := make([][]int, n)
	for i := range out {
		l := min(60, max(5, int(8+-math.Log(lr.uniform())*3.5)))
		out[i] = make([]int, l)
		for j := range out[i] {
			out[i][j] = 1 + int(tr.next()>>20%uint64(vocab-1))
		}
	}
	return out
}

func benchBatches(caps [][]int, plan [][]int, dim int) []*Batch {
	r := rand.New(rand.NewPCG(1, 1))
	var out []*Batch
	for _, rows := range plan {
		b := &Batch{B: len(rows), D: dim, Emb: make([]float32, len(rows)*dim)}
		for i := range b.Emb {
			b.Emb[i] = float32(r.NormFloat64())
		}
		for _, row := range rows {
			b.T = max(b.T, len(caps[row]))
		}
		b.Tokens, b.Mask = make([]int64, b.B*b.T), make([]float32, b.B*b.T)
		for i, row := range rows {
			for j, id := range caps[row] {
				b.Tokens[i*b.T+j], b.Mask[i*b.T+j] = int64(id), 1
			}
			b.NTokens += len(caps[row]) // the loss's normaliser, as Dataset.batch counts it
		}
		out = append(out, b)
	}
	return out
}

// benchTrainer builds a trainer around a model without a store.
func benchTrainer(b *testing.B, c Config) *Trainer {
	m, err := c.NewModel(512, gotch.CPU)
	if err != nil {
		b.Fatal(err)
	}
	tr := &Trainer{Cfg: c, dev: gotch.CPU}
	tr.attach(m)
	tr.st.Total = 100000
	return tr
}

// BenchmarkTrainStep: GPT-2 small (random weights), batch 40, COCO-like
// captions; samples/s of full optimizer steps. Compare with
// testdata/bench_train.py (scripts/bench_train.sh runs both).
func BenchmarkTrainStep(b *testing.B) {
	for _, v := range []struct {
		name      string
		kind      string
		bucket    bool
		precision string
	}{{"mlp", "mlp", false, "fp32"}, {"mlp-bucketed", "mlp", true, "fp32"}, {"transformer", "transformer", false, "fp32"},
		{"mlp-bf16", "mlp", false, "bf16"}, {"transformer-bf16", "transformer", false, "bf16"}} {
		b.Run(v.name, func(b *testing.B) {
			c := Default()
			c.GPT2, c.GPT2Random, c.GradAccum, c.MappingType = "gpt2", true, 1, v.kind
			c.Precision = v.precision
			if v.kind == "transformer" {
				c.PrefixLength, c.PrefixLengthClip, c.NumLayers, c.OnlyPrefix = 40, 40, 8, true
			}
			tr := benchTrainer(b, c)
			caps := cocoLikeCaptions(20000, 50257, 7)
			d := &Dataset{Tokens: caps, Captions: make([]featstore.Caption, len(caps))}
			plan := make([][]int, b.N+1)
			if v.bucket {
				plan = d.Plan(0, 0, 40, true)[:b.N+1]
			} else {
				for i := range plan {
					for r := i * 40; r < (i+1)*40; r++ {
						plan[i] = append(plan[i], r)
					}
				}
			}
			batches := benchBatches(caps, plan, 512)
			step := func(bt *Batch) {
				ch := make(chan batchOrErr, 1)
				ch <- batchOrErr{b: bt}
				if _, _, _, err := tr.optimizerStep(context.Background(), ch, bt.NTokens); err != nil {
					b.Fatal(err)
				}
			}
			step(batches[0]) // warm-up
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(batches[i+1])
			}
			b.ReportMetric(float64(40*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// liveTensors counts tensor handles neither dropped nor finalized yet.
func liveTensors() int {
	return len(ts.ExistingTensors)
}

func rssMB() float64 {
	data, _ := os.ReadFile("/proc/self/statm")
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize()) / (1 << 20)
}

// BenchmarkLongRunMemory: 2000 optimizer steps of a small model; reports RSS
// after 200 warm-up steps and at the end. Growth means leaked tensors or C
// allocations (MB-cheap-growth) or, when only RSS grows, arena fragmentation.
func BenchmarkLongRunMemory(b *testing.B) {
	c := tinyConfig("", "")
	c.GPT2Config = "gpt2:n_embd=64,n_layer=2,n_head=4,n_positions=128,vocab_size=1000"
	tr := benchTrainer(b, c)
	caps := cocoLikeCaptions(16*2000, 1000, 3)
	var warm, warmC float64
	var warmLive int
	for i := 0; i < 2000; i++ {
		rows := make([]int, 16)
		for k := range rows {
			rows[k] = i*16 + k
		}
		bt := benchBatches(caps, [][]int{rows}, 512)[0]
		ch := make(chan batchOrErr, 1)
		ch <- batchOrErr{b: bt}
		if _, _, _, err := tr.optimizerStep(context.Background(), ch, bt.NTokens); err != nil {
			b.Fatal(err)
		}
		if i == 199 {
			warm, warmLive, warmC = rssMB(), liveTensors(), cHeapInUseMB()
		}
	}
	end := rssMB()
	// C heap in use grows only with leaks (freed-but-kept arena pages are
	// not in it), so it separates a leak from allocator fragmentation.
	b.ReportMetric(cHeapInUseMB()-warmC, "MB-cheap-growth")
	b.ReportMetric(float64(warmLive), "live-tensors-warm")
	b.ReportMetric(float64(liveTensors()), "live-tensors-end")
	b.ReportMetric(warm, "MB-rss-warm")
	b.ReportMetric(end, "MB-rss-end")
	b.ReportMetric(end-warm, "MB-growth")
}
