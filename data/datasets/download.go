package datasets

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
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
	Client      *http.Client  // default: one with Timeout and connect/header timeouts
	// MaxRetryAfter caps how long a 429/503's Retry-After pauses a host (2m).
	MaxRetryAfter time.Duration
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
	// The politeness limits live in the transport, so they hold for every
	// request the client makes: redirect targets (CDNs) included.
	client := *opt.Client
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = &limitedTransport{base: base, hosts: hosts}
	opt.Client = &client
	cleaner := &partCleaner{maxAge: 2 * opt.Timeout, done: map[string]bool{}}
	var wg sync.WaitGroup
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				cleaner.clean(filepath.Dir(it.Path))
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
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 2 * time.Minute
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: o.Timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   o.PerHost,
		}}
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
		err = fetchOnce(ctx, it, opt)
		var p permanent
		if err == nil || errors.As(err, &p) || attempt >= opt.Retries || ctx.Err() != nil {
			if err != nil && attempt > 0 {
				err = fmt.Errorf("%w (after %d tries)", err, attempt+1)
			}
			return err
		}
		wait := delay
		var busy *busyError
		if errors.As(err, &busy) && busy.after > 0 {
			// The server said when to come back: the whole host waits.
			wait = min(busy.after, opt.MaxRetryAfter)
			hosts.pause(u.Host, wait)
		}
		select {
		case <-time.After(wait):
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
			return &busyError{err: err, after: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
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
	if err == nil {
		// Durable before it is visible: after a crash a present file must
		// be a whole one (a rerun skips present files).
		err = syncFile(tmp)
	}
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

func (h *hostLimits) get(host string) *hostLimit {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.m[host]
	if l == nil {
		l = &hostLimit{sem: make(chan struct{}, h.perHost)}
		h.m[host] = l
	}
	return l
}

// acquire takes one of the host's slots and waits for its next start time;
// the caller calls the returned release when the request is over.
func (h *hostLimits) acquire(ctx context.Context, host string) (release func(), err error) {
	l := h.get(host)
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release = func() { <-l.sem }
	l.mu.Lock()
	now := time.Now()
	start := l.next
	if start.Before(now) {
		start = now
	}
	if h.rate > 0 {
		l.next = start.Add(time.Duration(float64(time.Second) / h.rate))
	}
	l.mu.Unlock()
	if wait := time.Until(start); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// pause holds back new requests to host for d (a Retry-After).
func (h *hostLimits) pause(host string, d time.Duration) {
	l := h.get(host)
	l.mu.Lock()
	if until := time.Now().Add(d); until.After(l.next) {
		l.next = until
	}
	l.mu.Unlock()
}

// String summarizes the stats for a log line.
func (s DownloadStats) String() string {
	return strconv.Itoa(s.Downloaded) + " downloaded, " + strconv.Itoa(s.Cached) + " cached, " +
		strconv.Itoa(s.Skipped) + " skipped (failed before), " + strconv.Itoa(s.Failed) + " failed"
}
