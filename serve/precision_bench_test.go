package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/randmodel"
)

// BenchmarkServePrecision is the real-time case of the API per inference
// precision: one client POSTs a 640x480 PNG camera frame at a time to
// /v1/captions (ViT-B/32 + GPT-2 small, random weights, greedy, 20 tokens,
// no early stop), so each op is a frame's whole way to a caption: HTTP,
// PNG decode, CLIP, mapper, decoding. It reports latency p50/p95 and
// captions/s; the target for int8 is 4 captions/s on 2 cores.
func BenchmarkServePrecision(b *testing.B) {
	dir, err := os.MkdirTemp("", "clipcap-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := randmodel.Write(dir, randmodel.Real()); err != nil {
		b.Fatal(err)
	}
	var png bytes.Buffer
	if err := encodePNG(&png, benchFrame()); err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"fp32", "bf16", "int8"} {
		c, err := caption.Load(dir, caption.Options{Device: gotch.CPU, Precision: p})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(p, func(b *testing.B) {
			s, err := New(c, Config{MaxBatch: 1, Timeout: 10 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(s.Handler())
			defer func() { hs.Close(); s.Close() }()
			url := hs.URL + "/v1/captions?max_tokens=20&strategy=greedy"
			post := func() {
				resp, err := http.Post(url, "image/png", bytes.NewReader(png.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			post() // warm-up
			b.ResetTimer()
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				post()
				lat = append(lat, time.Since(t0))
			}
			report(b, lat, len(lat))
		})
	}
}
