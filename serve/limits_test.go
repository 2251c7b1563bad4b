package serve

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clipcap/clipcap/data/imageproc/imagebomb"
)

// Images over MaxPixels (default 40 Mpx, below PIL's 179 Mpx) are refused
// from their header: 413 at once, no pixel buffer allocated.
func TestBombImagesRefusedFromHeader(t *testing.T) {
	_, hs := newServer(t, Config{})
	jpegBomb, err := imagebomb.JPEG(8000, 6000)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"png": imagebomb.PNG(8000, 6000, 8, imagebomb.Gray), "jpeg": jpegBomb} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		code, _, m := post(t, hs.URL+"/v1/captions", "image/"+name, body)
		runtime.ReadMemStats(&after)
		if msg, _ := m["error"].(string); code != 413 || !strings.Contains(msg, "48000000 pixels exceeds limit of 40000000") {
			t.Errorf("%s bomb: %d %q, want 413", name, code, msg)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
			t.Errorf("%s bomb: %d MiB allocated to refuse it", name, n>>20)
		}
	}
}

// rawRequest writes a POST's headers declaring a body of n bytes, and
// returns the connection and a reader for the response.
func rawRequest(t *testing.T, url string, n int) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "POST /v1/captions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"+
		"Content-Length: "+strconv.Itoa(n)+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

// A body trickled (or not sent at all) is cut off with 408 soon after the
// first second, not held open.
func TestSlowBodyCutOff(t *testing.T) {
	_, hs := newServer(t, Config{})
	for _, bytesPerTick := range []int{0, 1} {
		conn, rd := rawRequest(t, hs.URL, 100000)
		start := time.Now()
		stop := make(chan struct{})
		go func() { // 1 byte every 100 ms: 10 B/s
			for bytesPerTick > 0 {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(rd, nil)
		close(stop)
		if err != nil {
			t.Fatalf("%d bytes per tick: %v", bytesPerTick, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if el := time.Since(start); resp.StatusCode != 408 || el > 3*time.Second || !strings.Contains(string(body), "too slowly") {
			t.Errorf("%d bytes per tick: %d after %v: %s", bytesPerTick, resp.StatusCode, el, body)
		}
	}
}

// With every admission place taken, a request gets 429 before its body is
// read: the client has sent only headers.
func TestQueueRoomCheckedBeforeBody(t *testing.T) {
	s, hs := newServer(t, Config{MaxBatch: 1, Queue: 1, MaxWait: time.Millisecond})
	release := make(chan struct{})
	s.b.beforeRun = func([]*job) { <-release }
	defer close(release)
	img := pngBytes(t, testImage(2))
	for i := 0; i < 2; i++ { // one running, one queued
		go http.Post(hs.URL+"/v1/captions", "image/png", bytes.NewReader(img))
	}
	for deadline := time.Now().Add(5 * time.Second); len(s.admitted) < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	_, rd := rawRequest(t, hs.URL, 5<<20)
	start := time.Now()
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || time.Since(start) > time.Second {
		t.Errorf("third request: %d (Retry-After %q) after %v, want 429 at once", resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start))
	}
}

// Decoding waits for a decode slot: with the only one held, a request
// times out (504) instead of decoding beside it.
func TestDecodeWaitsForSlot(t *testing.T) {
	s, hs := newServer(t, Config{DecodeSlots: 1, Timeout: 300 * time.Millisecond})
	if err := s.decodeSlots.acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	code, _, m := post(t, hs.URL+"/v1/captions", "image/png", pngBytes(t, testImage(1)))
	if code != 504 {
		t.Errorf("with the decode slot taken: %d %v, want 504", code, m)
	}
	s.decodeSlots.release(1)
	if code, _, m := post(t, hs.URL+"/v1/captions", "image/png", pngBytes(t, testImage(1))); code != 200 {
		t.Errorf("after release: %d %v", code, m)
	}
}

// The memory budget is granted first come, first served; a waiter whose
// context ends leaves the line.
func TestBudget(t *testing.T) {
	b := newBudget(10)
	if err := b.acquire(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 2)
	go func() { b.acquire(context.Background(), 5); got <- 5 }()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.acquire(ctx, 1); err == nil {
		t.Error("a later small request passed the waiting one")
	}
	select {
	case <-got:
		t.Fatal("granted 5 with 3 free")
	default:
	}
	b.release(7)
	if n := <-got; n != 5 || b.free != 5 {
		t.Errorf("granted %d, %d free; want 5 and 5", n, b.free)
	}
}

// Beam and max_tokens are capped by the server, and the model's own
// defaults obey the caps too.
func TestBeamAndTokensCapped(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := pngBytes(t, testImage(5))
	for _, q := range []string{"beam=16", "max_tokens=68"} {
		code, _, m := post(t, hs.URL+"/v1/captions?strategy=beam&"+q, "image/png", img)
		if msg, _ := m["error"].(string); code != 400 || !strings.Contains(msg, "this server's limit") {
			t.Errorf("%s: %d %q, want 400", q, code, msg)
		}
	}
	s2, hs2 := newServer(t, Config{MaxWait: time.Millisecond, MaxBeam: 2, MaxTokens: 5})
	seen := make(chan job, 1)
	s2.b.beforeRun = func(b []*job) { seen <- *b[0] }
	if code, _, m := post(t, hs2.URL+"/v1/captions?strategy=beam", "image/png", img); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	if j := <-seen; j.opt.BeamSize != 2 || j.opt.MaxTokens != 5 {
		t.Errorf("model defaults under caps 2/5 became beam %d, %d tokens", j.opt.BeamSize, j.opt.MaxTokens)
	}
}
