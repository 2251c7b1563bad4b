package download

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// server serves one payload at every path, with switchable misbehaviour.
type server struct {
	mu       sync.Mutex
	payload  []byte
	noRange  bool // ignore Range headers
	dieAfter int  // close the connection after this many body bytes (0: never)
	fail     int  // answer 503 this many times first
	status   int  // answer this status always (0: normal)
	requests []string
	ranges   []string
	etag     string // X-Linked-Etag on a redirect, like the hub
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	fail, status, dieAfter := s.fail, s.status, s.dieAfter
	if s.fail > 0 {
		s.fail--
	}
	s.dieAfter = 0 // only the first response dies
	s.mu.Unlock()
	if s.etag != "" && !strings.HasPrefix(r.URL.Path, "/cdn") {
		w.Header().Set("X-Linked-Etag", `"`+s.etag+`"`)
		http.Redirect(w, r, "/cdn"+r.URL.Path, http.StatusFound)
		return
	}
	switch {
	case status != 0:
		http.Error(w, "nope", status)
		return
	case fail > 0:
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if s.noRange {
		r.Header.Del("Range")
	}
	if dieAfter > 0 {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.payload)-1, len(s.payload)))
			w.Header().Set("Content-Length", fmt.Sprint(len(s.payload)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(s.payload)))
		}
		w.Write(s.payload[start : start+dieAfter])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(s.payload))
}

func newServer(t *testing.T, size int) (*server, *httptest.Server) {
	t.Helper()
	p := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(p)
	s := &server{payload: p}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func quiet() Options {
	return Options{Backoff: time.Millisecond, Logf: func(string, ...any) {}, Stderr: &bytes.Buffer{},
		sleep: func(time.Duration) error { return nil }}
}

func TestFetchFileFullDownload(t *testing.T) {
	s, ts := newServer(t, 100_000)
	dest := filepath.Join(t.TempDir(), "w.bin")
	var last int64
	opt := quiet()
	opt.Progress = func(_ string, done, total int64) {
		if total != int64(len(s.payload)) {
			t.Errorf("progress total %d", total)
		}
		last = done
	}
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w.bin", SHA256: sha(s.payload)}, dest, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) {
		t.Fatal("content differs")
	}
	if last != int64(len(s.payload)) {
		t.Errorf("progress ended at %d", last)
	}
	if _, err := os.Stat(dest + ".partial"); !os.IsNotExist(err) {
		t.Error(".partial left behind")
	}
	// A second fetch verifies the file and makes no request.
	n := len(s.requests)
	if err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w.bin", SHA256: sha(s.payload)}, dest, opt); err != nil {
		t.Fatal(err)
	}
	if len(s.requests) != n {
		t.Error("cached file downloaded again")
	}
}

func TestFetchFileResumesPartial(t *testing.T) {
	s, ts := newServer(t, 50_000)
	dest := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(dest+".partial", s.payload[:12345], 0o644); err != nil {
		t.Fatal(err)
	}
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w.bin", SHA256: sha(s.payload)}, dest, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) {
		t.Fatal("content differs")
	}
	if len(s.ranges) != 1 || s.ranges[0] != "bytes=12345-" {
		t.Errorf("ranges requested: %q", s.ranges)
	}
}

func TestFetchFileServerIgnoresRange(t *testing.T) {
	s, ts := newServer(t, 30_000)
	s.noRange = true
	dest := filepath.Join(t.TempDir(), "w.bin")
	// Garbage in the partial file must not survive a full 200 response.
	os.WriteFile(dest+".partial", bytes.Repeat([]byte{0xee}, 5000), 0o644)
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w.bin", SHA256: sha(s.payload)}, dest, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) {
		t.Fatal("content differs")
	}
}

func TestFetchFileServerDiesMidStream(t *testing.T) {
	s, ts := newServer(t, 200_000)
	s.dieAfter = 70_000
	dest := filepath.Join(t.TempDir(), "w.bin")
	var logs []string
	opt := quiet()
	opt.Logf = func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w.bin", SHA256: sha(s.payload)}, dest, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) {
		t.Fatal("content differs")
	}
	if len(s.ranges) != 2 || s.ranges[1] != "bytes=70000-" {
		t.Errorf("expected a resume at 70000, ranges %q", s.ranges)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "connection lost after 70000 bytes") {
		t.Errorf("retry log %q", logs)
	}
}

func TestFetchFileRetriesTransientErrors(t *testing.T) {
	s, ts := newServer(t, 1000)
	s.fail = 2
	dest := filepath.Join(t.TempDir(), "w.bin")
	var waits []time.Duration
	opt := quiet()
	opt.Backoff = 10 * time.Millisecond
	opt.sleep = func(d time.Duration) error { waits = append(waits, d); return nil }
	if err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w", SHA256: sha(s.payload)}, dest, opt); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 2 || waits[0] != 10*time.Millisecond || waits[1] != 20*time.Millisecond {
		t.Errorf("backoff waits %v", waits)
	}
	// Persistent 503s exhaust the attempts, keeping what was downloaded.
	s.fail = 100
	dest2 := filepath.Join(t.TempDir(), "x.bin")
	opt.Attempts = 3
	err := FetchFile(context.Background(), File{Name: "x.bin", URL: ts.URL + "/x", SHA256: sha(s.payload)}, dest2, opt)
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 failed attempts") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v", err)
	}
}

func TestFetchFileHashMismatchRemovesFile(t *testing.T) {
	_, ts := newServer(t, 4096)
	dest := filepath.Join(t.TempDir(), "w.bin")
	want := strings.Repeat("ab", 32)
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w", SHA256: want}, dest, quiet())
	if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("error %v", err)
	}
	for _, p := range []string{dest, dest + ".partial"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
}

func TestFetchFileNotFound(t *testing.T) {
	s, ts := newServer(t, 10)
	s.status = http.StatusNotFound
	dest := filepath.Join(t.TempDir(), "w.bin")
	err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/missing"}, dest, quiet())
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/missing") {
		t.Fatalf("error %v", err)
	}
	if len(s.requests) != 1 {
		t.Errorf("404 retried: %d requests", len(s.requests))
	}
	for _, p := range []string{dest, dest + ".partial"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s created", p)
		}
	}
}

func TestFetchFileReplacesCorruptCachedFile(t *testing.T) {
	s, ts := newServer(t, 2048)
	dest := filepath.Join(t.TempDir(), "w.bin")
	os.WriteFile(dest, []byte("stale"), 0o644)
	if err := FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w", SHA256: sha(s.payload)}, dest, quiet()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) {
		t.Fatal("stale file kept")
	}
}

// Hub files without a recorded hash are checked against the X-Linked-Etag
// that the hub sends on its redirect, or the git blob sha1 ETag.
func TestFetchVerifiesHubETags(t *testing.T) {
	s, ts := newServer(t, 5000)
	s.etag = sha(s.payload)
	dest := filepath.Join(t.TempDir(), "m.safetensors")
	f := File{Name: "m.safetensors", URL: ts.URL + "/gpt2/resolve/main/m", HubETag: true}
	if err := FetchFile(context.Background(), f, dest, quiet()); err != nil {
		t.Fatal(err)
	}
	s.etag = strings.Repeat("0", 64)
	dest2 := filepath.Join(t.TempDir(), "m.safetensors")
	if err := FetchFile(context.Background(), f, dest2, quiet()); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("bad X-Linked-Etag accepted: %v", err)
	}

	blob := []byte(`{"n_embd": 768}`)
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(blob))
	h.Write(blob)
	gitID := hex.EncodeToString(h.Sum(nil))
	for _, tag := range []string{gitID, strings.Repeat("1", 40)} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"`+tag+`"`)
			w.Write(blob)
		}))
		dest := filepath.Join(t.TempDir(), "config.json")
		err := FetchFile(context.Background(), File{Name: "config.json", URL: hs.URL + "/c", HubETag: true}, dest, quiet())
		hs.Close()
		if (tag == gitID) != (err == nil) {
			t.Errorf("etag %s: error %v", tag, err)
		}
	}
}

func TestFetchRegistryModelsFromOverriddenEndpoints(t *testing.T) {
	s, ts := newServer(t, 3000)
	t.Setenv("CLIPCAP_HF_ENDPOINT", ts.URL+"/hf/")
	t.Setenv("CLIPCAP_CLIP_ENDPOINT", ts.URL+"/clip")
	cache := t.TempDir()
	opt := quiet()
	opt.CacheDir = cache
	dir, err := Fetch(context.Background(), "gpt2-medium", opt)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(cache, "models", "gpt2-medium") {
		t.Errorf("dir %s", dir)
	}
	for _, f := range []string{"config.json", "vocab.json", "merges.txt", "model.safetensors"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Equal(b, s.payload) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if s.requests[0] != "/hf/gpt2-medium/resolve/main/config.json" {
		t.Errorf("requested %q", s.requests[0])
	}
	// CLIP: the URL's sha256 segment is checked, so the random payload fails
	// verification while the path is the official layout.
	_, err = Fetch(context.Background(), "ViT-B/32", opt)
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("ViT-B/32: %v", err)
	}
	if last := s.requests[len(s.requests)-1]; last != "/clip/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt" {
		t.Errorf("requested %q", last)
	}
	if _, err := Fetch(context.Background(), "gpt3", opt); err == nil || !strings.Contains(err.Error(), "ViT-B/32") {
		t.Errorf("unknown model error %v", err)
	}
}

func TestRegistry(t *testing.T) {
	t.Setenv("CLIPCAP_CLIP_ENDPOINT", "")
	if len(Names()) != 13 {
		t.Errorf("names %v", Names())
	}
	m, err := Lookup("ViT-L/14@336px")
	if err != nil {
		t.Fatal(err)
	}
	f := m.Files[0]
	if m.Dir != "ViT-L-14@336px" || f.Name != "ViT-L-14-336px.pt" ||
		f.URL != "https://openaipublic.azureedge.net/clip/models/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt" ||
		f.SHA256 != "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02" {
		t.Errorf("lookup %+v", m)
	}
	for _, n := range Names() {
		m, err := Lookup(n)
		if err != nil || len(m.Files) == 0 || strings.Contains(m.Dir, "/") {
			t.Errorf("%s: %+v %v", n, m, err)
		}
		for _, f := range m.Files {
			if strings.HasSuffix(f.Name, ".pt") && !hex64.MatchString(f.SHA256) {
				t.Errorf("%s: CLIP file without sha256", n)
			}
		}
	}
	if SHA256FromURL("https://x/y/model.bin") != "" {
		t.Error("hash invented")
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("CLIPCAP_CACHE", "/c")
	if d, _ := CacheDir(); d != "/c" {
		t.Errorf("%s", d)
	}
	t.Setenv("CLIPCAP_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if d, _ := CacheDir(); d != "/x/clipcap" {
		t.Errorf("%s", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/h")
	if d, _ := CacheDir(); d != "/h/.cache/clipcap" {
		t.Errorf("%s", d)
	}
	if ModelDir("/c", "ViT-B/32") != "/c/models/ViT-B-32" {
		t.Error(ModelDir("/c", "ViT-B/32"))
	}
}

func TestFetchFileRefusesConcurrentDownload(t *testing.T) {
	s, ts := newServer(t, 100)
	dest := filepath.Join(t.TempDir(), "w.bin")
	other, err := os.OpenFile(dest+".partial", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	err = FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w"}, dest, quiet())
	if err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("error %v", err)
	}
	if len(s.requests) != 0 {
		t.Error("downloaded despite the lock")
	}
}
