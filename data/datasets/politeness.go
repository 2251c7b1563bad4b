package datasets

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// limitedTransport applies the per-host politeness limits to every request
// the client sends, so a redirect to another host (a CDN) counts against
// that host. A request holds its host's slot until its body is closed (or
// RoundTrip fails); the client closes a redirect's body before following it,
// so one download never holds two slots.
type limitedTransport struct {
	base  http.RoundTripper
	hosts *hostLimits
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	release, err := t.hosts.acquire(r.Context(), r.URL.Host)
	if err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// busyError is a 429 or 5xx, with the wait its Retry-After asked for.
type busyError struct {
	err   error
	after time.Duration
}

func (e *busyError) Error() string { return e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(n)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// syncFile is (*os.File).Sync; tests observe it.
var syncFile = (*os.File).Sync

// partCleaner removes the ".<name>.part-*" temporaries a killed run left
// in each image directory, once per directory per run. Only files older
// than maxAge go: a request never outlives Timeout, so a younger one may
// belong to a download running in another process.
type partCleaner struct {
	maxAge time.Duration
	mu     sync.Mutex
	done   map[string]bool
}

func (c *partCleaner) clean(dir string) {
	c.mu.Lock()
	if c.done[dir] {
		c.mu.Unlock()
		return
	}
	c.done[dir] = true
	c.mu.Unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, ".") || !strings.Contains(n, ".part-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > c.maxAge {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
