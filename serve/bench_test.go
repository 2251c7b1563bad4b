package serve

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/live"
	"github.com/clipcap/clipcap/model/generate"
)

var (
	realOnce sync.Once
	realCap  *caption.Captioner
	realErr  error
)

// realModel is ViT-B/32 + GPT-2 small (random weights), written once per
// benchmark binary into a temporary model dir and loaded back.
func realModel(b *testing.B) *caption.Captioner {
	b.Helper()
	realOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clipcap-bench-")
		if err != nil {
			realErr = err
			return
		}
		defer os.RemoveAll(dir)
		if realErr = randmodel.Write(dir, randmodel.Real()); realErr == nil {
			realCap, realErr = caption.Load(dir, caption.Options{Device: gotch.CPU})
		}
	})
	if realErr != nil {
		b.Fatal(realErr)
	}
	return realCap
}

// benchFrame is a 640x480 camera-sized RGB frame.
func benchFrame() *live.Frame {
	f := &live.Frame{W: 640, H: 480, Pix: make([]byte, 640*480*3)}
	for i := range f.Pix {
		f.Pix[i] = uint8(i*7 + i/1920)
	}
	return f
}

// Every caption is exactly benchTokens long (no stop token), the length of
// a typical COCO caption, so all rows do the same work.
const benchTokens = 20

func benchOpts(strategy generate.Strategy, noCache bool) generate.Options {
	return generate.Options{Strategy: strategy, BeamSize: 5, MaxTokens: benchTokens, StopTokens: []int{}, NoCache: noCache}
}

// BenchmarkFrameToCaption is the live path: one raw RGB frame → Image →
// CLIP preprocessing → ViT-B/32 → mapper → GPT-2 small, one frame at a
// time, with the KV cache ("cached") or the way predict.py does it (no
// cache, "predictpy"). It reports latency p50/p95 and captions/s.
func BenchmarkFrameToCaption(b *testing.B) {
	c := realModel(b)
	f := benchFrame()
	for _, tc := range []struct {
		name string
		opt  generate.Options
	}{
		{"greedy/cached", benchOpts(generate.Greedy, false)},
		{"greedy/predictpy", benchOpts(generate.Greedy, true)},
		{"beam5/cached", benchOpts(generate.Beam, false)},
		{"beam5/predictpy", benchOpts(generate.Beam, true)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := c.FromImages([]*imageproc.Image{f.Image()}, tc.opt); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			report(b, lat, len(lat))
		})
	}
}

// BenchmarkServeBatched is sustained serving: 8 concurrent clients POST
// 640x480 PNGs to the HTTP API with dynamic batching (max-batch 8). Each
// op is one caption; it reports request latency p50/p95 and captions/s.
func BenchmarkServeBatched(b *testing.B) {
	c := realModel(b)
	var png bytes.Buffer
	if err := encodePNG(&png, benchFrame()); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
	}{{"greedy", "strategy=greedy"}, {"beam5", "strategy=beam&beam=5"}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := New(c, Config{MaxBatch: 8, MaxWait: 20 * time.Millisecond, Timeout: 10 * time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			hs := httptest.NewServer(s.Handler())
			defer func() { hs.Close(); s.Close() }()
			url := hs.URL + "/v1/captions?max_tokens=20&" + tc.query
			// The server's options cannot drop the stop token; with random
			// weights captions rarely stop early, and the caption lengths are
			// reported.
			var mu sync.Mutex
			var lat []time.Duration
			jobs := make(chan struct{}, b.N)
			for i := 0; i < b.N; i++ {
				jobs <- struct{}{}
			}
			close(jobs)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						t0 := time.Now()
						resp, err := http.Post(url, "image/png", bytes.NewReader(png.Bytes()))
						if err != nil || resp.StatusCode != 200 {
							b.Errorf("request: %v %v", err, resp.Status)
							return
						}
						resp.Body.Close()
						mu.Lock()
						lat = append(lat, time.Since(t0))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "captions/s")
			report(b, lat, -1)
		})
	}
}

// report adds p50/p95 latency and, for sequential runs (n >= 0), the
// captions per second that latency allows.
func report(b *testing.B, lat []time.Duration, n int) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(live.Percentile(lat, 0.5).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(live.Percentile(lat, 0.95).Milliseconds()), "p95-ms")
	if n >= 0 {
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		b.ReportMetric(float64(n)/sum.Seconds(), "captions/s")
	}
}

func encodePNG(w *bytes.Buffer, f *live.Frame) error {
	im := image.NewRGBA(image.Rect(0, 0, f.W, f.H))
	for i := 0; i < f.W*f.H; i++ {
		im.Pix[4*i], im.Pix[4*i+1], im.Pix[4*i+2], im.Pix[4*i+3] = f.Pix[3*i], f.Pix[3*i+1], f.Pix[3*i+2], 255
	}
	return png.Encode(w, im)
}
