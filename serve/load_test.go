package serve

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/randmodel"
)

// TestLoad runs 32 clients against a real listener on loopback for
// CLIPCAP_LOADTEST_SECONDS (default 60) with dynamic batching, and for half
// that with one-at-a-time serving (max-batch 1), on randmodel.Small. It
// needs CLIPCAP_LOADTEST=1 (scripts/bench_serve.sh sets it). It fails on
// any failed request other than a 429, on goroutine or memory growth, and
// when batching gives less than 1.5x the throughput.
func TestLoad(t *testing.T) {
	if os.Getenv("CLIPCAP_LOADTEST") == "" {
		t.Skip("load test: set CLIPCAP_LOADTEST=1 (or run scripts/bench_serve.sh)")
	}
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("CLIPCAP_LOADTEST_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	dir := t.TempDir()
	if err := randmodel.Write(dir, randmodel.Small()); err != nil {
		t.Fatal(err)
	}
	c, err := caption.Load(dir, caption.Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	imgs := make([][]byte, 8)
	for i := range imgs {
		imgs[i] = pngBytes(t, testImage(100+i))
	}
	const clients = 32
	// Warm up: libtorch's allocator and Go's heap reach their working size.
	loadPhase(t, c, Config{MaxBatch: 32, MaxWait: 5 * time.Millisecond}, clients, 5*time.Second, imgs)
	runtime.GC()
	g0, rss0, heap0 := runtime.NumGoroutine(), rssBytes(), heapBytes()

	batched := loadPhase(t, c, Config{MaxBatch: 32, MaxWait: 5 * time.Millisecond}, clients, time.Duration(secs)*time.Second, imgs)
	single := loadPhase(t, c, Config{MaxBatch: 1, MaxWait: time.Millisecond}, clients, time.Duration(secs/2)*time.Second, imgs)
	t.Logf("batched: %s", batched)
	t.Logf("max-batch 1: %s", single)
	for _, p := range []phase{batched, single} {
		if p.failed > 0 {
			t.Errorf("%d failed requests (first: %s)", p.failed, p.firstErr)
		}
	}
	if ratio := batched.rate() / single.rate(); ratio < 1.5 {
		t.Errorf("batching gives %.2fx the throughput of max-batch 1, want >= 1.5x", ratio)
	} else {
		t.Logf("batching speed-up: %.2fx", ratio)
	}

	http.DefaultClient.CloseIdleConnections()
	var g1 int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if g1 = runtime.NumGoroutine(); g1 <= g0 {
			break
		}
	}
	runtime.GC()
	rss1, heap1 := rssBytes(), heapBytes()
	t.Logf("goroutines %d -> %d, RSS %.0f -> %.0f MiB, Go heap %.1f -> %.1f MiB", g0, g1, mib(rss0), mib(rss1), mib(heap0), mib(heap1))
	if g1 > g0 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if heap1 > heap0+32<<20 {
		t.Errorf("Go heap grew from %.1f to %.1f MiB", mib(heap0), mib(heap1))
	}
	if rss0 > 0 && rss1 > rss0+rss0/4+128<<20 {
		t.Errorf("RSS grew from %.0f to %.0f MiB", mib(rss0), mib(rss1))
	}
}

type phase struct {
	ok, tooMany, failed int64
	firstErr            string
	elapsed             time.Duration
	meanBatch           float64
}

func (p phase) rate() float64 { return float64(p.ok) / p.elapsed.Seconds() }

func (p phase) String() string {
	return strconv.FormatInt(p.ok, 10) + " captions in " + p.elapsed.Round(time.Millisecond).String() + " = " +
		strconv.FormatFloat(p.rate(), 'f', 1, 64) + "/s, mean batch " + strconv.FormatFloat(p.meanBatch, 'f', 1, 64) +
		", 429s " + strconv.FormatInt(p.tooMany, 10)
}

// loadPhase serves on 127.0.0.1:0 and runs clients until d has passed
// (each client also stops after 100000 requests), then shuts down.
func loadPhase(t *testing.T, c *caption.Captioner, cfg Config, clients int, d time.Duration, imgs [][]byte) phase {
	t.Helper()
	s, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	url := "http://" + (<-addrc).String() + "/v1/captions?strategy=greedy"
	var p phase
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; n < 100000 && time.Now().Before(stop); n++ {
				resp, err := http.Post(url, "image/png", bytes.NewReader(imgs[(i+n)%len(imgs)]))
				if err != nil {
					atomic.AddInt64(&p.failed, 1)
					errOnce.Do(func() { p.firstErr = err.Error() })
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200 && bytes.Contains(body, []byte(`"tokens"`)):
					atomic.AddInt64(&p.ok, 1)
				case resp.StatusCode == 429:
					atomic.AddInt64(&p.tooMany, 1)
					time.Sleep(50 * time.Millisecond)
				default:
					atomic.AddInt64(&p.failed, 1)
					errOnce.Do(func() { p.firstErr = strconv.Itoa(resp.StatusCode) + " " + string(body) })
				}
			}
		}(i)
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	s.met.batchSize.mu.Lock()
	if s.met.batchSize.n > 0 {
		p.meanBatch = s.met.batchSize.sum / float64(s.met.batchSize.n)
	}
	s.met.batchSize.mu.Unlock()
	return p
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mib[T int64 | uint64](v T) float64 { return float64(v) / (1 << 20) }
