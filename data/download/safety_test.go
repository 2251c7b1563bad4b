package download

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A process that fails to get the lock must not unlink the holder's
// (still empty) partial file: the holder would write into a file nobody
// can find, and a third process could start another download beside it.
func TestRefusedDownloadKeepsHoldersPartial(t *testing.T) {
	_, ts := newServer(t, 100)
	dest := filepath.Join(t.TempDir(), "w.bin")
	holder, err := lockPartial(dest + ".partial")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	err = FetchFile(context.Background(), File{Name: "w.bin", URL: ts.URL + "/w"}, dest, quiet())
	if err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("error %v", err)
	}
	held, _ := holder.Stat()
	now, err := os.Stat(dest + ".partial")
	if err != nil || !os.SameFile(held, now) {
		t.Fatalf("the holder's partial file was removed or replaced (%v)", err)
	}
}

// After a holder unlinked the partial path, a process that opened it
// before must not keep downloading into the unlinked file.
func TestLockPartialRejectsUnlinkedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.partial")
	f, err := lockPartial(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	f.Close()
	g, err := lockPartial(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	st, _ := g.Stat()
	now, err := os.Stat(p)
	if err != nil || !os.SameFile(st, now) {
		t.Fatalf("locked file is not the one at %s (%v)", p, err)
	}
}

// A server that stops sending (before the headers, or mid-body) fails the
// try after StallTimeout instead of hanging forever; the retry resumes.
func TestStalledServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	payload := bytes.Repeat([]byte("x"), 1000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/headers":
			<-release // never answers
		case r.Header.Get("Range") == "":
			w.Header().Set("Content-Length", "1000")
			w.Write(payload[:10])
			w.(http.Flusher).Flush()
			<-release // stalls mid-body
		default:
			w.Header().Set("Content-Range", "bytes 10-999/1000")
			w.Header().Set("Content-Length", "990")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(payload[10:])
		}
	}))
	defer ts.Close()
	defer close(release) // before Close, which waits for the handlers
	opt := quiet()
	opt.StallTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()

	opt.Attempts = 1
	err := FetchFile(ctx, File{Name: "h", URL: ts.URL + "/headers"}, filepath.Join(dir, "h"), opt)
	if err == nil || !strings.Contains(err.Error(), "nothing received for 200ms") {
		t.Fatalf("no headers: %v", err)
	}
	opt.Attempts = 2
	if err := FetchFile(ctx, File{Name: "b", URL: ts.URL + "/body"}, filepath.Join(dir, "b"), opt); err != nil {
		t.Fatalf("stalled body: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b")); !bytes.Equal(got, payload) {
		t.Fatalf("resumed file differs (%d bytes)", len(got))
	}
}

// A hub mirror without ETags gives nothing to verify against: the first
// download records size and sha256, and a later fetch re-downloads a file
// that no longer matches the record.
func TestUnpinnedFileIsCheckedAgainstItsRecord(t *testing.T) {
	s, ts := newServer(t, 5000)
	dir := t.TempDir()
	dest := filepath.Join(dir, "config.json")
	f := File{Name: "config.json", URL: ts.URL + "/config.json", HubETag: true}
	if err := FetchFile(context.Background(), f, dest, quiet()); err != nil {
		t.Fatal(err)
	}
	var sums map[string]recordedSum
	data, _ := os.ReadFile(filepath.Join(dir, SumsFile))
	if err := json.Unmarshal(data, &sums); err != nil || sums["config.json"].SHA256 != sha(s.payload) || sums["config.json"].Size != 5000 {
		t.Fatalf("recorded %s (%v)", data, err)
	}
	n := len(s.requests)
	if err := FetchFile(context.Background(), f, dest, quiet()); err != nil || len(s.requests) != n {
		t.Fatalf("an intact file was fetched again (%v)", err)
	}
	for _, tamper := range []func(){
		func() { // same size, other bytes, a new mtime
			b, _ := os.ReadFile(dest)
			b[100] ^= 1
			os.WriteFile(dest, b, 0o644)
			os.Chtimes(dest, time.Now(), time.Now().Add(time.Hour))
		},
		func() { os.WriteFile(dest, []byte("{}"), 0o644) }, // truncated
	} {
		tamper()
		n := len(s.requests)
		if err := FetchFile(context.Background(), f, dest, quiet()); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, s.payload) || len(s.requests) == n {
			t.Fatalf("a changed file was kept (requests %d -> %d)", n, len(s.requests))
		}
	}
}
