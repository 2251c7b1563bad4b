package datasets

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FailuresFile, under DownloadOptions.Dir, lists the items whose download
// failed, one JSON object per line; later lines win.
const FailuresFile = "failures.jsonl"

// DownloadOptions configure Download. Zero values take the defaults noted.
type DownloadOptions struct {
	Dir         string        // where FailuresFile lives (required)
	Workers     int           // concurrent downloads (16)
	PerHost     int           // concurrent requests per host (4)
	Rate        float64       // request starts per second per host (0: no limit)
	Timeout     time.Duration // whole request, body included (30s)
	Retries     int           // extra tries after transient failures (2; <0: none)
	Backoff     time.Duration // first retry delay, doubled each time (1s)
	MaxBytes    int64         // largest accepted image (32 MiB)
	RetryFailed bool          // try again the items FailuresFile lists
	Client      *http.Client  // default: one with Timeout
	// Progress, when set, is called after each item from one goroutine.
	Progress func(DownloadStats)
}

// DownloadStats counts what Download did.
type DownloadStats struct {
	Total      int // items with a URL
	Downloaded int
	Cached     int // already on disk
	Skipped    int // listed as failed by an earlier run
	Failed     int
}

// Failure is one line of FailuresFile.
type Failure struct {
	ImageID string `json:"image_id"`
	URL     string `json:"url"`
	Reason  string `json:"reason"`
}

// permanent marks failures that retrying cannot fix.
type permanent struct{ error }

// Download fetches every item that has a URL to its Path, skipping files
// already present, so an interrupted run resumes. Failures are appended to
// FailuresFile with their reason, and a rerun skips them unless
// RetryFailed. Files appear atomically, so a present file is complete.
func Download(ctx context.Context, items []Item, opt DownloadOptions) (DownloadStats, error) {
	if opt.Dir == "" {
		return DownloadStats{}, errors.New("download: no directory for the failure list")
	}
	opt.defaults()
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return DownloadStats{}, err
	}
	failPath := filepath.Join(opt.Dir, FailuresFile)
	failed, err := ReadFailures(failPath)
	if err != nil {
		return DownloadStats{}, err
	}
	logf, err := os.OpenFile(failPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return DownloadStats{}, err
	}
	defer logf.Close()

	type result struct {
		item Item
		err  error
	}
	jobs := make(chan Item)
	results := make(chan result)
	hosts := &hostLimits{perHost: opt.PerHost, rate: opt.Rate, m: map[string]*hostLimit{}}
	var wg sync.WaitGroup
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				results <- result{it, fetchItem(ctx, it, &opt, hosts)}
			}
		}()
	}
	var st DownloadStats
	go func() {
		defer close(jobs)
		for _, it := range items {
			if it.URL == "" {
				continue
			}
			if it.Path == "" {
				results <- result{it, permanent{errors.New("no local path to download to")}}
				continue
			}
			if _, err := os.Stat(it.Path); err == nil {
				results <- result{it, errCached}
				continue
			}
			if _, bad := failed[it.ImageID]; bad && !opt.RetryFailed {
				results <- result{it, errSkipped}
				continue
			}
			select {
			case jobs <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		// Results close once the feeder (which also sends) and the workers end.
		wg.Wait()
		close(results)
	}()
	w := bufio.NewWriter(logf)
	for r := range results {
		st.Total++
		switch {
		case r.err == nil:
			st.Downloaded++
		case errors.Is(r.err, errCached):
			st.Cached++
		case errors.Is(r.err, errSkipped):
			st.Skipped++
		case ctx.Err() != nil:
			// Cancelled mid-request: not the URL's fault, so not recorded.
		default:
			st.Failed++
			line, _ := json.Marshal(Failure{ImageID: r.item.ImageID, URL: r.item.URL, Reason: r.err.Error()})
			w.Write(append(line, '\n'))
			if err := w.Flush(); err != nil {
				return st, fmt.Errorf("%s: %w", failPath, err)
			}
		}
		if opt.Progress != nil {
			opt.Progress(st)
		}
	}
	return st, ctx.Err()
}

var (
	errCached  = errors.New("already downloaded")
	errSkipped = errors.New("failed in an earlier run")
)

func (o *DownloadOptions) defaults() {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.PerHost <= 0 {
		o.PerHost = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 2
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 32 << 20
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
}

// ReadFailures reads a FailuresFile into image id → reason (absent file:
// empty map).
func ReadFailures(path string) (map[string]string, error) {
	out := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var fl Failure
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			// A kill can tear the last line; the item is then simply retried.
			continue
		}
		out[fl.ImageID] = fl.Reason
	}
	return out, sc.Err()
}

func fetchItem(ctx context.Context, it Item, opt *DownloadOptions, hosts *hostLimits) error {
	u, err := url.Parse(it.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad URL %q", it.URL)
	}
	delay := opt.Backoff
	for attempt := 0; ; attempt++ {
		err = hosts.do(ctx, u.Host, func() error { return fetchOnce(ctx, it, opt) })
		var p permanent
		if err == nil || errors.As(err, &p) || attempt >= opt.Retries || ctx.Err() != nil {
			if err != nil && attempt > 0 {
				err = fmt.Errorf("%w (after %d tries)", err, attempt+1)
			}
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay *= 2
	}
}

func fetchOnce(ctx context.Context, it Item, opt *DownloadOptions) error {
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, it.URL, nil)
	if err != nil {
		return permanent{err}
	}
	req.Header.Set("User-Agent", "clipcap-dataset-downloader")
	resp, err := opt.Client.Do(req)
	if err != nil {
		return err // network errors and timeouts are worth another try
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("HTTP %s", resp.Status)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return err
		}
		return permanent{err}
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !strings.HasPrefix(ct, "image/") {
		return permanent{fmt.Errorf("content type %q is not an image", resp.Header.Get("Content-Type"))}
	}
	if resp.ContentLength > opt.MaxBytes {
		return permanent{fmt.Errorf("image of %d bytes is over the %d-byte limit", resp.ContentLength, opt.MaxBytes)}
	}
	if err := os.MkdirAll(filepath.Dir(it.Path), 0o755); err != nil {
		return permanent{err}
	}
	tmp, err := os.CreateTemp(filepath.Dir(it.Path), "."+filepath.Base(it.Path)+".part-*")
	if err != nil {
		return permanent{err}
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, opt.MaxBytes+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated body: %d of %d bytes: %w", n, resp.ContentLength, err)
	case err != nil:
		return fmt.Errorf("reading the body: %w", err)
	case n > opt.MaxBytes:
		return permanent{fmt.Errorf("image is over the %d-byte limit", opt.MaxBytes)}
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return fmt.Errorf("truncated body: %d of %d bytes", n, resp.ContentLength)
	case n == 0:
		return permanent{errors.New("empty body")}
	}
	return os.Rename(tmp.Name(), it.Path)
}

// hostLimits is the politeness policy: at most perHost requests in flight
// per host, and request starts spaced 1/rate apart.
type hostLimits struct {
	perHost int
	rate    float64
	mu      sync.Mutex
	m       map[string]*hostLimit
}

type hostLimit struct {
	sem  chan struct{}
	mu   sync.Mutex
	next time.Time
}

func (h *hostLimits) do(ctx context.Context, host string, fn func() error) error {
	h.mu.Lock()
	l := h.m[host]
	if l == nil {
		l = &hostLimit{sem: make(chan struct{}, h.perHost)}
		h.m[host] = l
	}
	h.mu.Unlock()
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.sem }()
	if h.rate > 0 {
		l.mu.Lock()
		now := time.Now()
		start := l.next
		if start.Before(now) {
			start = now
		}
		l.next = start.Add(time.Duration(float64(time.Second) / h.rate))
		l.mu.Unlock()
		select {
		case <-time.After(time.Until(start)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fn()
}

// String summarizes the stats for a log line.
func (s DownloadStats) String() string {
	return strconv.Itoa(s.Downloaded) + " downloaded, " + strconv.Itoa(s.Cached) + " cached, " +
		strconv.Itoa(s.Skipped) + " skipped (failed before), " + strconv.Itoa(s.Failed) + " failed"
}
