package datasets

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server serves each failure mode on its own path and counts requests.
type server struct {
	mu   sync.Mutex
	hits map[string]int
}

// countingTransport measures the politeness limit where it is enforced: on
// the client. A request is in flight from RoundTrip until its body is
// closed (or RoundTrip fails). Counting server handlers instead measured the
// wrong thing: a handler whose client already timed out keeps running.
type countingTransport struct {
	base     http.RoundTripper
	inFlight atomic.Int32
	peak     atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.inFlight.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		c.inFlight.Add(-1)
		return nil, err
	}
	resp.Body = &countedBody{ReadCloser: resp.Body, done: func() { c.inFlight.Add(-1) }}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// snapshot copies the hit counts under the lock: a handler whose client
// gave up may still be running when Download returns.
func (s *server) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.hits))
	for k, v := range s.hits {
		out[k] = v
	}
	return out
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	hit := s.hits[r.URL.Path]
	s.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // long enough for requests to overlap
	png := []byte("\x89PNG fake image bytes")
	switch {
	case strings.HasPrefix(r.URL.Path, "/ok"):
		w.Header().Set("Content-Type", "image/png")
		w.Write(png)
	case r.URL.Path == "/slow":
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(png)
	case r.URL.Path == "/missing":
		http.NotFound(w, r)
	case r.URL.Path == "/html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<html>gone</html>"))
	case r.URL.Path == "/huge":
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(make([]byte, 5000))
	case r.URL.Path == "/truncated":
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", "1000")
		w.Write(png) // then the handler returns: the connection is cut short
	case r.URL.Path == "/redirect":
		http.Redirect(w, r, "/ok-target", http.StatusFound)
	case r.URL.Path == "/flaky": // fails once, then works: retried
		if hit == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/webp")
		w.Write(png)
	default:
		http.NotFound(w, r)
	}
}

func TestDownload(t *testing.T) {
	srv := &server{hits: map[string]int{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	paths := []string{"/ok1", "/ok2", "/ok3", "/ok4", "/ok5", "/ok6", "/slow", "/missing", "/html", "/huge", "/truncated", "/redirect", "/flaky"}
	var items []Item
	for i, p := range paths {
		items = append(items, Item{ImageID: strconv.Itoa(i), URL: ts.URL + p, Path: ImageFile(dir, i)})
	}
	items = append(items, Item{ImageID: "local", Path: "/nowhere"}) // no URL: not a download
	transport := &countingTransport{base: http.DefaultTransport}
	opt := DownloadOptions{Dir: dir, Workers: 8, PerHost: 3, Timeout: 150 * time.Millisecond,
		Retries: 1, Backoff: time.Millisecond, MaxBytes: 1000, Client: &http.Client{Transport: transport}}
	st, err := Download(context.Background(), items, opt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 13 || st.Downloaded != 8 || st.Failed != 5 {
		t.Fatalf("stats %+v", st)
	}
	if p := transport.peak.Load(); p > 3 || p < 2 {
		t.Errorf("%d requests in flight at once, per-host limit is 3 (and 8 workers should reach it)", p)
	}
	for i, p := range paths {
		data, err := os.ReadFile(ImageFile(dir, i))
		ok := strings.HasPrefix(p, "/ok") || p == "/redirect" || p == "/flaky"
		if ok != (err == nil) || (ok && !strings.HasPrefix(string(data), "\x89PNG")) {
			t.Errorf("%s: file %q, %v", p, data, err)
		}
	}
	fails, err := ReadFailures(dir + "/" + FailuresFile)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"6": "deadline exceeded", "7": "404", "8": `content type "text/html; charset=utf-8" is not an image`,
		"9": "over the 1000-byte limit", "10": "truncated"}
	if len(fails) != len(want) {
		t.Errorf("failures %v", fails)
	}
	for id, w := range want {
		if !strings.Contains(fails[id], w) {
			t.Errorf("failure of item %s: %q, want it to mention %q", id, fails[id], w)
		}
	}
	// Transient failures were retried, permanent ones not.
	// The server may see the last /slow retry after its client gave up
	// (a loaded machine); wait for it rather than race it.
	hits := srv.snapshot()
	for end := time.Now().Add(5 * time.Second); hits["/slow"] < 2 && time.Now().Before(end); hits = srv.snapshot() {
		time.Sleep(10 * time.Millisecond)
	}
	if hits["/slow"] != 2 || hits["/flaky"] != 2 || hits["/missing"] != 1 || hits["/html"] != 1 {
		t.Errorf("hits %v", hits)
	}

	// A rerun downloads nothing and leaves the dead URLs alone...
	before := len(hits)
	total := 0
	for _, n := range hits {
		total += n
	}
	st, err = Download(context.Background(), items, opt)
	if err != nil || st.Cached != 8 || st.Skipped != 5 || st.Downloaded+st.Failed != 0 {
		t.Fatalf("rerun: %+v %v", st, err)
	}
	after := 0
	hits = srv.snapshot()
	for _, n := range hits {
		after += n
	}
	if after != total || len(hits) != before {
		t.Fatalf("rerun made %d requests", after-total)
	}
	// ...unless asked to retry them.
	opt.RetryFailed, opt.Timeout = true, 2*time.Second
	st, err = Download(context.Background(), items, opt)
	if err != nil || st.Downloaded != 1 || st.Failed != 4 || st.Cached != 8 {
		t.Fatalf("retry failed: %+v %v", st, err)
	}
}

func TestPolitenessRate(t *testing.T) {
	srv := &server{hits: map[string]int{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	var items []Item
	for i := 0; i < 6; i++ {
		items = append(items, Item{ImageID: strconv.Itoa(i), URL: ts.URL + "/ok" + strconv.Itoa(i), Path: ImageFile(dir, i)})
	}
	start := time.Now()
	st, err := Download(context.Background(), items, DownloadOptions{Dir: dir, Workers: 6, PerHost: 6, Rate: 50})
	if err != nil || st.Downloaded != 6 {
		t.Fatalf("%+v %v", st, err)
	}
	// 6 starts spaced 20 ms apart take at least 100 ms.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("6 requests at 50/s took only %v", d)
	}
}
