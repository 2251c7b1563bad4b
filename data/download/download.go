// Package download fetches published weights into the local cache:
// resumable HTTP downloads (Range requests onto a .partial file), sha256
// verification, atomic rename on success, retries with backoff and a
// progress bar.
package download

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clipcap/clipcap/internal/progress"
)

// Options tunes a download. The zero value works: default client, cache
// from CacheDir, 5 attempts, progress bar on a terminal stderr.
type Options struct {
	CacheDir string // default CacheDir()
	// Client defaults to one with connect, TLS-handshake and idle-connection
	// timeouts but no overall one, which would cut multi-GB downloads.
	Client *http.Client
	// StallTimeout fails a try that waits this long for the response
	// headers or for the next body bytes (default 60s); the retry resumes.
	StallTimeout time.Duration
	// Attempts is how many consecutive failed tries a file gets (default 5);
	// a try that made progress does not count against it.
	Attempts int
	Backoff  time.Duration // first retry delay, doubled each time (default 1s)
	// Progress, when set, receives byte counts instead of the progress bar.
	Progress func(file string, done, total int64)
	Stderr   io.Writer                 // progress bar target (default os.Stderr)
	Logf     func(string, ...any)      // retry notices (default: to Stderr)
	sleep    func(time.Duration) error // tests shorten waits
}

func (o *Options) defaults() error {
	if o.CacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return err
		}
		o.CacheDir = d
	}
	if o.Client == nil {
		o.Client = NewClient()
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 60 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Logf == nil {
		w := o.Stderr
		o.Logf = func(f string, a ...any) { fmt.Fprintf(w, f+"\n", a...) }
	}
	return nil
}

// Fetch downloads every file of the named registry model into
// <cache>/models/<dir>/ and returns that directory. Files already present
// (and verified when their hash is known) are not fetched again.
func Fetch(ctx context.Context, name string, opt Options) (string, error) {
	m, err := Lookup(name)
	if err != nil {
		return "", err
	}
	if err := opt.defaults(); err != nil {
		return "", err
	}
	dir := filepath.Join(opt.CacheDir, "models", m.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("fetch %s: %w", name, err)
	}
	for _, f := range m.Files {
		if err := FetchFile(ctx, f, filepath.Join(dir, f.Name), opt); err != nil {
			return "", fmt.Errorf("fetch %s: %w", name, err)
		}
	}
	return dir, nil
}

// permanentError marks failures a retry cannot fix (404, hash mismatch).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// ErrHashMismatch is wrapped by errors for files whose content does not
// match the expected hash; the bad file has been removed.
var ErrHashMismatch = errors.New("hash mismatch")

// FetchFile downloads f to dest. The bytes go to dest+".partial", which a
// later call resumes with a Range request; when complete and verified the
// file is renamed to dest.
func FetchFile(ctx context.Context, f File, dest string, opt Options) error {
	if err := opt.defaults(); err != nil {
		return err
	}
	if ok, err := existingOK(f, dest); err != nil || ok {
		return err
	}
	partial := dest + ".partial"
	// One downloader per file: a second process would interleave writes.
	pf, err := lockPartial(partial)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer pf.Close()
	defer func() {
		// Leave no empty .partial behind a failure (404, refused connection);
		// one holding data stays so the next run resumes. This runs before
		// the Close above, while the lock is still ours: a process that
		// failed to get the lock must never unlink the holder's file.
		if st, err := pf.Stat(); err == nil && st.Size() == 0 {
			removeIfSame(partial, st)
		}
	}()

	var hdr http.Header
	failures := 0
	for {
		var gained int64
		hdr, gained, err = tryOnce(ctx, f, pf, &opt)
		if err == nil {
			break
		}
		var perm permanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		if gained > 0 {
			failures = 0 // a flaky but progressing server keeps going
		}
		failures++
		if failures >= opt.Attempts {
			note := ""
			if st, serr := pf.Stat(); serr == nil && st.Size() > 0 {
				note = fmt.Sprintf(" (%d bytes kept in %s; run again to resume)", st.Size(), partial)
			}
			return fmt.Errorf("%s: giving up after %d failed attempts: %w%s", f.Name, failures, err, note)
		}
		wait := opt.Backoff << (failures - 1)
		opt.Logf("download %s: %v; retrying in %v", f.Name, err, wait)
		if err := opt.sleepFor(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}

	sum, err := verify(f, pf, hdr)
	if err != nil {
		os.Remove(partial) // still locked: Close (deferred) comes after
		return fmt.Errorf("%s: %w (downloaded file removed)", f.Name, err)
	}
	if err := pf.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", f.Name, err)
	}
	if err := os.Rename(partial, dest); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		d.Sync() // make the rename durable
		d.Close()
	}
	if f.SHA256 == "" {
		if err := recordSum(dest, sum); err != nil {
			opt.Logf("download %s: recording its checksum: %v", f.Name, err)
		}
	}
	return nil
}

func (o *Options) sleepFor(ctx context.Context, d time.Duration) error {
	if o.sleep != nil {
		return o.sleep(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// existingOK reports whether dest is already a complete download. Only
// verified files are ever renamed to dest, so without a known hash its
// presence is enough; with one, a stale or corrupted file is replaced.
func existingOK(f File, dest string) (bool, error) {
	fh, err := os.Open(dest)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	defer fh.Close()
	if f.SHA256 == "" {
		// No pinned hash: check against what the first download recorded.
		return checkRecorded(f, dest, fh)
	}
	sum, err := hashFile(fh, sha256.New())
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	if sum == f.SHA256 {
		return true, nil
	}
	return false, os.Remove(dest)
}

var contentRange = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// tryOnce makes one request, continuing from the partial file's length
// when it has one. It returns the final response's headers plus those of
// any redirect (the hub puts X-Linked-Etag on its redirect), and how many
// bytes it appended.
func tryOnce(ctx context.Context, f File, pf *os.File, opt *Options) (http.Header, int64, error) {
	st, err := pf.Stat()
	if err != nil {
		return nil, 0, permanentError{err}
	}
	offset := st.Size()
	// The watchdog cancels the try when headers or body bytes stop coming
	// for StallTimeout; each read that brings bytes rewinds it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	watchdog := time.AfterFunc(opt.StallTimeout, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()
	stallErr := func(err error) error {
		if stalled.Load() {
			return fmt.Errorf("GET %s: nothing received for %v: %w", f.URL, opt.StallTimeout, err)
		}
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, 0, permanentError{err}
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	// Identity encoding: byte offsets must refer to the file itself.
	req.Header.Set("Accept-Encoding", "identity")
	hdr := http.Header{}
	client := *opt.Client
	if f.Drive && client.Jar == nil {
		client.Jar = newJar() // Drive's older confirmation flow sets a cookie
	}
	prev := client.CheckRedirect
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.Response != nil {
			for k, v := range r.Response.Header {
				if strings.EqualFold(k, "X-Linked-Etag") || strings.EqualFold(k, "X-Linked-Size") {
					hdr[k] = v
				}
			}
		}
		if prev != nil {
			return prev(r, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	resp, err := client.Do(req)
	if err == nil && f.Drive {
		resp, err = followDrive(ctx, &client, req, resp)
	}
	if err != nil {
		return nil, 0, stallErr(err)
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		if _, ok := hdr[k]; !ok {
			hdr[k] = v
		}
	}

	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		m := contentRange.FindStringSubmatch(resp.Header.Get("Content-Range"))
		if m == nil {
			return hdr, 0, fmt.Errorf("GET %s: 206 with unusable Content-Range %q", f.URL, resp.Header.Get("Content-Range"))
		}
		if start, _ := strconv.ParseInt(m[1], 10, 64); start != offset {
			// Resuming at the wrong place would corrupt the file: start over.
			if err := pf.Truncate(0); err != nil {
				return hdr, 0, permanentError{err}
			}
			return hdr, 0, fmt.Errorf("GET %s: server resumed at byte %d, not %d; restarting", f.URL, start, offset)
		}
		if m[3] != "*" {
			total, _ = strconv.ParseInt(m[3], 10, 64)
		}
	case resp.StatusCode == http.StatusOK:
		// A full response: the server ignored Range (or there was none).
		if offset > 0 {
			if err := pf.Truncate(0); err != nil {
				return hdr, 0, permanentError{err}
			}
			offset = 0
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		// The partial file is already whole (or longer than the file now is);
		// verification decides which, and restarts cleanly if it is wrong.
		m := regexp.MustCompile(`^bytes \*/(\d+)$`).FindStringSubmatch(resp.Header.Get("Content-Range"))
		if m != nil {
			if n, _ := strconv.ParseInt(m[1], 10, 64); n == offset {
				return hdr, 0, nil
			}
		}
		if err := pf.Truncate(0); err != nil {
			return hdr, 0, permanentError{err}
		}
		return hdr, 0, fmt.Errorf("GET %s: range %d- not satisfiable; restarting from scratch", f.URL, offset)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return hdr, 0, permanentError{fmt.Errorf("GET %s: %s", f.URL, resp.Status)}
	default:
		return hdr, 0, fmt.Errorf("GET %s: %s", f.URL, resp.Status)
	}

	if _, err := pf.Seek(offset, io.SeekStart); err != nil {
		return hdr, 0, permanentError{err}
	}
	var w io.Writer = pf
	var bar *progress.Bar
	if opt.Progress != nil {
		w = io.MultiWriter(pf, &progressWriter{name: f.Name, done: offset, total: total, fn: opt.Progress})
	} else if bar = progress.New(opt.Stderr, total, progress.Options{Desc: f.Name, Unit: "bytes", Done: offset}); bar != nil {
		w = io.MultiWriter(pf, bar)
	}
	n, err := io.Copy(w, &rewind{r: resp.Body, t: watchdog, d: opt.StallTimeout})
	if err == nil && (total < 0 || offset+n == total) {
		bar.Finish()
	} else {
		bar.Stop()
	}
	if err != nil {
		return hdr, n, stallErr(fmt.Errorf("GET %s: connection lost after %d bytes: %w", f.URL, offset+n, err))
	}
	if total >= 0 && offset+n != total {
		return hdr, n, fmt.Errorf("GET %s: got %d of %d bytes", f.URL, offset+n, total)
	}
	return hdr, n, nil
}

type progressWriter struct {
	name        string
	done, total int64
	fn          func(string, int64, int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.fn(p.name, p.done, p.total)
	return len(b), nil
}

var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

// verify checks the complete partial file against the expected sha256, or,
// for hub files without a recorded hash, against the hub's ETag headers. It
// returns the file's sha256 (computed when nothing gave one), which a file
// without a pinned hash records for later checks.
func verify(f File, pf *os.File, hdr http.Header) (string, error) {
	want, kind := f.SHA256, "sha256"
	if want == "" && f.HubETag && hdr != nil {
		if tag := cleanETag(hdr.Get("X-Linked-Etag")); hex64.MatchString(tag) {
			want = tag // LFS file: the hub's ETag is its sha256
		} else if tag := cleanETag(hdr.Get("Etag")); hex40.MatchString(tag) {
			want, kind = tag, "git-sha1" // small file: git blob id
		} else if tag := cleanETag(hdr.Get("Etag")); hex64.MatchString(tag) {
			want = tag
		}
	}
	if _, err := pf.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if want == "" {
		// Nothing to check against (a mirror without ETags); sizes were
		// checked already. The hash is recorded: trust on first use.
		return hashFile(pf, sha256.New())
	}
	var h hash.Hash
	if kind == "sha256" {
		h = sha256.New()
	} else {
		st, err := pf.Stat()
		if err != nil {
			return "", err
		}
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	}
	got, err := hashFile(pf, h)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", permanentError{fmt.Errorf("%w: %s is %s, want %s", ErrHashMismatch, kind, got, want)}
	}
	if kind == "sha256" {
		return got, nil
	}
	if _, err := pf.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return hashFile(pf, sha256.New())
}

func cleanETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.ToLower(strings.Trim(s, `"`))
}

func hashFile(r io.Reader, h hash.Hash) (string, error) {
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
