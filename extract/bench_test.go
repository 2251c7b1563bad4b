package extract

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/model/clip"
)

// BenchmarkExtractViTB32 runs the whole extract pipeline (decode,
// preprocess, batched encoding, store writes) on 64 generated 640x480 JPEGs
// with a random-weight ViT-B/32 at batch 32, and reports images/s plus the
// share of time the encoder was busy. Run it explicitly:
//
//	go test -run '^$' -bench ExtractViTB32 -benchtime 2x ./extract/
//
// extract/testdata/bench_pil_torch.py measures the PyTorch equivalent.
// benchBatch is the batch size of both this benchmark and
// testdata/bench_pil_torch.py (keep them equal).
const benchBatch = 16

func BenchmarkExtractViTB32(b *testing.B) {
	root := b.TempDir()
	cfg, err := clip.KnownConfig("ViT-B/32")
	if err != nil {
		b.Fatal(err)
	}
	model := writeCLIP(b, root, cfg)
	dir := filepath.Join(root, "imgs")
	const n = 64
	for i := 0; i < n; i++ {
		writeImage(b, filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), 2*i+1, 640, 480)
	}
	// Decode + preprocess alone, on the same workers extract uses.
	var inputs []imageproc.Input
	for i := 0; i < n; i++ {
		inputs = append(inputs, imageproc.Input{Name: filepath.Join(dir, fmt.Sprintf("%03d.jpg", i))})
	}
	t0 := time.Now()
	if _, err := (&imageproc.Pipeline{Pre: imageproc.NewPreprocessor(224)}).Run(context.Background(), inputs); err != nil {
		b.Fatal(err)
	}
	pre := time.Since(t0)
	b.ResetTimer()
	var sum Summary
	for i := 0; i < b.N; i++ {
		out := filepath.Join(root, fmt.Sprint("store", i))
		sum, err = Run(context.Background(), Options{Dataset: "folder", Input: dir, CLIP: model, Out: out, Batch: benchBatch,
			Device: gotch.CPU, Stderr: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(out)
	}
	b.StopTimer()
	// Throughput of the pipeline; loading the 350 MB of weights is a
	// one-time cost (the PyTorch baseline builds its model before timing).
	b.ReportMetric(float64(n)/(sum.Elapsed-sum.Load).Seconds(), "images/s")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s-with-load")
	b.ReportMetric(float64(n)/pre.Seconds(), "decode+preprocess-images/s")
	b.ReportMetric(float64(n)/sum.Encode.Seconds(), "encoder-images/s")
	b.ReportMetric(sum.EncoderWait.Seconds()/sum.Elapsed.Seconds(), "encoder-wait-fraction")
}
