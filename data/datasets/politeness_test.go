package datasets

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostCounting counts the requests to one host in flight on the client
// (from RoundTrip until the body is closed).
type hostCounting struct {
	host string
	countingTransport
}

func (c *hostCounting) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != c.host {
		return c.base.RoundTrip(r)
	}
	return c.countingTransport.RoundTrip(r)
}

// Redirect targets count against their own host's limit: a site that
// redirects every image to one CDN must not let all workers onto it.
func TestPerHostLimitCoversRedirects(t *testing.T) {
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG bytes"))
	}))
	defer cdn.Close()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cdn.URL+"/img"+r.URL.Path, http.StatusFound)
	}))
	defer site.Close()
	var items []Item
	dir := t.TempDir()
	for i := 0; i < 24; i++ {
		items = append(items, Item{ImageID: strconv.Itoa(i), URL: site.URL + "/" + strconv.Itoa(i), Path: ImageFile(dir, i)})
	}
	// The origin's own limit (2) never binds here: its redirects are
	// instant. Without a limit on the CDN, 8 workers reach 8 there.
	tr := &hostCounting{host: strings.TrimPrefix(cdn.URL, "http://"), countingTransport: countingTransport{base: http.DefaultTransport}}
	st, err := Download(context.Background(), items, DownloadOptions{Dir: dir, Workers: 8, PerHost: 2, Client: &http.Client{Transport: tr}})
	if err != nil || st.Downloaded != 24 {
		t.Fatalf("%+v %v", st, err)
	}
	if p := tr.peak.Load(); p > 2 {
		t.Fatalf("%d requests in flight on the redirect target, per-host limit is 2", p)
	}
}

// A 429 with Retry-After is retried no sooner than the server asked, and
// the host pauses meanwhile.
func TestRetryAfterIsHonoured(t *testing.T) {
	var mu sync.Mutex
	var hits []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, time.Now())
		n := len(hits)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG"))
	}))
	defer ts.Close()
	dir := t.TempDir()
	items := []Item{{ImageID: "0", URL: ts.URL + "/a", Path: ImageFile(dir, 0)}}
	st, err := Download(context.Background(), items, DownloadOptions{Dir: dir, Backoff: time.Millisecond})
	if err != nil || st.Downloaded != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	if len(hits) != 2 || hits[1].Sub(hits[0]) < 950*time.Millisecond {
		t.Fatalf("retried after %v, Retry-After said 1s", hits[len(hits)-1].Sub(hits[0]))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"7": 7 * time.Second, "Thu, 01 Jan 2026 00:00:30 GMT": 30 * time.Second,
		"": 0, "soon": 0, "-3": 0} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

// Every image is fsynced before it is renamed into place, and stale
// temporaries of a killed run are removed (young ones may be another
// process's live downloads and stay).
func TestImagesDurableAndStalePartsCleaned(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG"))
	}))
	defer ts.Close()
	dir := t.TempDir()
	var items []Item
	for i := 0; i < 3; i++ {
		items = append(items, Item{ImageID: strconv.Itoa(i), URL: ts.URL + "/" + strconv.Itoa(i), Path: ImageFile(dir, i)})
	}
	sub := filepath.Dir(items[0].Path)
	os.MkdirAll(sub, 0o755)
	stale, young := filepath.Join(sub, ".000000007.part-123"), filepath.Join(sub, ".000000008.part-456")
	os.WriteFile(stale, []byte("half"), 0o644)
	os.WriteFile(young, []byte("half"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)

	var synced atomic.Int32
	defer func() { syncFile = (*os.File).Sync }()
	syncFile = func(f *os.File) error {
		if !strings.Contains(filepath.Base(f.Name()), ".part-") {
			t.Errorf("synced %s, not a temporary", f.Name())
		}
		synced.Add(1)
		return f.Sync()
	}
	st, err := Download(context.Background(), items, DownloadOptions{Dir: dir, Timeout: 5 * time.Second})
	if err != nil || st.Downloaded != 3 {
		t.Fatalf("%+v %v", st, err)
	}
	if synced.Load() != 3 {
		t.Errorf("%d of 3 images fsynced before the rename", synced.Load())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary kept: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a young temporary (maybe a live download) was removed: %v", err)
	}
}
