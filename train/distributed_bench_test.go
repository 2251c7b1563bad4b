package train

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkDataParallel: training samples/s of 2 workers × 1 CPU thread
// against 1 worker × 1 thread, all started by the built-in launcher in the
// same run, the same per-worker batch on a GPT-2 of n_embd 256 × 4 layers.
// Throughput is rank 0's logged samples/s (all ranks' samples), first log
// interval (warm-up) left out. The 2 workers are pinned to a core each, as
// the launcher does; the baseline is the faster of 1 worker pinned and not
// pinned. Ideal speed-up is 2x on 2 idle cores; the all-reduce (15 MB of
// gradients a step, with the loss and stop flag) is the overhead, which
// the step's compute hides better the larger the batch: the headline
// figures are at a per-worker batch of 32, the "-bs8" ones at 8, where a
// step computes for only about 45 ms.
func BenchmarkDataParallel(b *testing.B) {
	store := makeStore(b, 8) // 128 captions
	rate := func(n, bs int, pin bool) float64 {
		c := tinyConfig(store, b.TempDir())
		c.GPT2Config = "gpt2:n_embd=256,n_layer=4,n_head=4,n_positions=64,vocab_size=257"
		c.BS, c.Epochs, c.LogEvery, c.SampleCaptions, c.ValSplit = bs, 8*n, 4, 0, ""
		// Epoch checkpoints only at the end: this store's epochs are a few
		// steps long, where a real run's are thousands, and rank 0's saving
		// would otherwise be a large share of every epoch (measured: half of
		// the 2-worker step time at batch 8).
		c.SaveEvery = c.Epochs
		if out, err := launchPinned(b, n, workerSpec{Config: c}, nil, pin); err != nil {
			b.Fatalf("%d workers: %v\n%s", n, err, out)
		}
		recs, err := ReadMetrics(filepath.Join(c.RunDir(), MetricsFile))
		if err != nil {
			b.Fatal(err)
		}
		var sum float64
		var k int
		for _, r := range recs {
			if r.Type == "train" && r.SamplesPerSec != nil && r.Step > c.LogEvery {
				sum += *r.SamplesPerSec
				k++
			}
		}
		if k == 0 {
			b.Fatalf("%d workers: no train records", n)
		}
		return sum / float64(k)
	}
	for i := 0; i < b.N; i++ {
		for _, bs := range []int{32, 8} {
			onePinned, oneFree := rate(1, bs, true), rate(1, bs, false)
			two := rate(2, bs, true)
			one := max(onePinned, oneFree)
			suffix := ""
			if bs != 32 {
				suffix = fmt.Sprintf("-bs%d", bs)
			}
			b.ReportMetric(two, "2x1-samples/s"+suffix)
			b.ReportMetric(one, "1x1-samples/s"+suffix)
			b.ReportMetric(two/one, "speedup"+suffix)
			fmt.Printf("data parallel, batch %d a worker: 1 worker %.1f samples/s (pinned %.1f, not %.1f), 2 workers %.1f samples/s, %.2fx\n",
				bs, one, onePinned, oneFree, two, two/one)
		}
	}
}
