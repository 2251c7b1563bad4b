// Package serve is clipcap's HTTP API and web page: POST /v1/captions
// captions an image, concurrent requests are batched dynamically into one
// forward pass; /v1/stream (WebSocket) captions the newest frame of a camera
// feed sent by the page at /; /healthz and /metrics (Prometheus) report on
// the server. All inference goes through the caption package.
package serve

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

//go:embed web/index.html
var webFS embed.FS

// Config tunes the server. Zero fields take the defaults in brackets.
type Config struct {
	MaxBatch int           // images per forward pass [8]
	MaxWait  time.Duration // how long a batch waits to fill [10ms]
	Queue    int           // images waiting beyond the running batch; more get 429 [64]
	MaxBody  int64         // request body limit in bytes; more get 413 [10 MiB]
	Timeout  time.Duration // per request, queueing included; then 504 [30s]

	// Limits on what one request may cost (see limits.go).
	MaxPixels    int           // images declaring more pixels get 413, from the header [imageproc.UntrustedMaxPixels]
	DecodeSlots  int           // images decoded at once [GOMAXPROCS]
	DecodeMemory int64         // estimated bytes of images being decoded at once [1 GiB]
	BodyTimeout  time.Duration // the whole body must arrive within this; then 408 [30s]
	MinBodyRate  int64         // after the first second, bodies slower than this (bytes/s) get 408 [16 KiB/s]
	IdleTimeout  time.Duration // keep-alive connections idle longer are closed [60s]
	MaxBeam      int           // largest beam a request may ask for [8]
	MaxTokens    int           // largest max_tokens a request may ask for [67]

	// Access (see access.go).
	APIKey       string   // when set, requests need "Authorization: Bearer APIKey"
	AllowedHosts []string // host names accepted in Host besides IPs, localhost and the listen address's; "*" = any

	// AllowFetch lets /v1/chat/completions fetch http(s) image URLs.
	AllowFetch bool
	// ModelName is the model's id in /v1/models and chat answers ["clipcap"].
	ModelName string
}

func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 8
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 10 * time.Millisecond
	}
	if c.Queue <= 0 {
		c.Queue = 64
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 10 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = imageproc.UntrustedMaxPixels
	}
	if c.DecodeSlots <= 0 {
		c.DecodeSlots = runtime.GOMAXPROCS(0)
	}
	if c.DecodeMemory <= 0 {
		c.DecodeMemory = 1 << 30
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 30 * time.Second
	}
	if c.MinBodyRate <= 0 {
		c.MinBodyRate = 16 << 10
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxBeam <= 0 {
		c.MaxBeam = 8
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 67
	}
	if c.ModelName == "" {
		c.ModelName = "clipcap"
	}
	return c
}

// Server answers caption requests with one Captioner.
type Server struct {
	c       *caption.Captioner
	cfg     Config
	b       *batcher
	met     *metrics
	closing chan struct{} // closed at shutdown: streams end, healthz says so
	once    sync.Once
	streams sync.WaitGroup
	// streamMu orders addStream against Shutdown.
	streamMu sync.Mutex
	// observeStream, when set (tests), sees every caption sent on a stream.
	observeStream func(frame int, c caption.Caption)
	closed        atomic.Bool
	// observeChat, when set (tests), sees every chat completion answered.
	observeChat func(id string, choices []caption.Caption)

	admitted    chan struct{} // one token per request past admission
	decodeSlots *budget
	decodeMem   *budget
	hostMu      sync.RWMutex
	allowed     []string // AllowedHosts, plus the listen address's host
}

// New starts a server's batcher; Close stops it.
func New(c *caption.Captioner, cfg Config) (*Server, error) {
	if c.CLIP == nil {
		return nil, errors.New("the model has no CLIP encoder, which serving images needs (give --clip or put the encoder in the model dir)")
	}
	cfg = cfg.withDefaults()
	// A failing gotch Must* call deep in the model panics instead of
	// exiting, and the batcher fails only that batch.
	torchrt.TrapFatal()
	met := newMetrics()
	return &Server{c: c, cfg: cfg, met: met, closing: make(chan struct{}),
		b:           newBatcher(c, cfg.MaxBatch, cfg.Queue, cfg.MaxWait, met),
		admitted:    make(chan struct{}, cfg.Queue+cfg.MaxBatch),
		decodeSlots: newBudget(int64(cfg.DecodeSlots)), decodeMem: newBudget(cfg.DecodeMemory),
		allowed: append([]string(nil), cfg.AllowedHosts...)}, nil
}

// Handler routes the API, the page and the metrics, behind the Host and
// API-key checks.
func (s *Server) Handler() http.Handler { return s.guard(s.routes()) }

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/captions", s.handleCaption)
	mux.HandleFunc("GET /v1/stream", s.handleStream)
	s.routeOpenAI(mux)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.met.write(w)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page, _ := webFS.ReadFile("web/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	return mux
}

// Shutdown stops taking work: open streams are told to go away, healthz
// turns 503. In-flight requests still finish; call Close after the HTTP
// server's own Shutdown.
func (s *Server) Shutdown() {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	s.once.Do(func() { close(s.closing) })
}

// Close shuts down and stops the batcher once queued work has run.
func (s *Server) Close() {
	s.Shutdown()
	s.streams.Wait()
	if s.closed.CompareAndSwap(false, true) {
		s.b.close()
	}
}

// ListenAndServe serves on addr until ctx is cancelled (SIGTERM in the
// command), then shuts down gracefully: no new connections, in-flight
// requests finish (up to the request timeout), streams close. ready, when
// set, receives the bound address.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.allowHost(addr)
	// Bodies get their own deadlines per request (guardBody) and responses
	// theirs (handleCaption): a server-wide ReadTimeout or WriteTimeout
	// would also cut the long-lived WebSocket streams.
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: s.cfg.IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout+5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	s.Close()
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.closing:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "clip": s.c.Config.CLIP.Name,
			"mapper": s.c.Config.Model.Mapper.Kind, "queue_depth": s.b.depth.Load()})
	}
}

// Response is the JSON answer of POST /v1/captions.
type Response struct {
	Caption   string  `json:"caption"`
	Tokens    []int   `json:"tokens"`
	Timings   Timings `json:"timings"`
	BatchSize int     `json:"batch_size"`
}

// Timings of one request, in milliseconds. Encoding covers the whole CLIP
// batch, generation the request's group of equal options.
type Timings struct {
	QueueMS    float64 `json:"queue_ms"`
	EncodeMS   float64 `json:"encode_ms"`
	GenerateMS float64 `json:"generate_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// httpError is an error with the status code it answers.
type httpError struct {
	code       int
	msg        string
	retryAfter int
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) handleCaption(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.met.inflight.Add(1)
	defer s.met.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	var resp *Response
	release, err := s.admit()
	if err == nil {
		resp, err = s.caption(ctx, w, r, start)
		release()
	}
	code := http.StatusOK
	switch {
	case errors.Is(err, errStreamed): // answered already
	case err != nil:
		var he *httpError
		if !errors.As(err, &he) {
			he = errorf(http.StatusInternalServerError, "%v", err)
		}
		code = he.code
		if he.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
		}
		writeJSON(w, code, map[string]string{"error": he.msg})
	default:
		writeJSON(w, code, resp)
	}
	s.met.request(code, time.Since(start).Seconds())
}

func (s *Server) caption(ctx context.Context, w http.ResponseWriter, r *http.Request, start time.Time) (*Response, error) {
	data, name, form, err := s.readImage(w, r)
	if err != nil {
		return nil, err
	}
	opt, err := s.parseOptions(form)
	if err != nil {
		return nil, err
	}
	px, err := s.decodeImage(ctx, data, name)
	if err != nil {
		return nil, err
	}
	if wantStream(form) {
		return nil, s.streamCaption(ctx, w, px, opt, start)
	}
	res, err := s.await(ctx, px, opt)
	if err != nil {
		return nil, err
	}
	return &Response{Caption: res.cap.Text, Tokens: res.cap.Tokens, BatchSize: res.batch, Timings: Timings{
		QueueMS: ms(res.queue), EncodeMS: ms(res.enc), GenerateMS: ms(res.gen), TotalMS: ms(time.Since(start))}}, nil
}

// readImage takes the body as the image, or the multipart field "image".
// It returns the form values that carry options (query, plus multipart
// fields).
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) ([]byte, string, map[string][]string, error) {
	done := s.guardBody(w, r)
	data, name, form, err := s.readBody(w, r)
	done(err == nil)
	return data, name, form, err
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, string, map[string][]string, error) {
	if r.ContentLength > s.cfg.MaxBody {
		return nil, "", nil, errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes exceeds the limit of %d", r.ContentLength, s.cfg.MaxBody)
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	tooBig := func(err error) error {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return errorf(http.StatusRequestEntityTooLarge, "request body exceeds the limit of %d bytes", s.cfg.MaxBody)
		}
		if errors.Is(err, errSlowBody) {
			return errorf(http.StatusRequestTimeout, "%v: the body must arrive within %v, at %d bytes/s or more after the first second",
				err, s.cfg.BodyTimeout, s.cfg.MinBodyRate)
		}
		return errorf(http.StatusBadRequest, "reading the request: %v", err)
	}
	form := map[string][]string(r.URL.Query())
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		if err := r.ParseMultipartForm(s.cfg.MaxBody); err != nil {
			return nil, "", nil, tooBig(err)
		}
		f, hdr, err := r.FormFile("image")
		if err != nil {
			return nil, "", nil, errorf(http.StatusBadRequest, "multipart request has no file field \"image\"")
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return nil, "", nil, tooBig(err)
		}
		return data, hdr.Filename, r.Form, nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", nil, tooBig(err)
	}
	return data, "request body", form, nil
}

// preprocess is decodeImage within the request timeout.
func (s *Server) preprocess(data []byte, name string) ([]float32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	defer cancel()
	return s.decodeImage(ctx, data, name)
}

func (s *Server) newJob(ctx context.Context, px []float32, opt generate.Options) *job {
	return &job{ctx: ctx, px: px, opt: opt, key: fmt.Sprintf("%+v", opt), enq: time.Now(), done: make(chan result, 1)}
}

// submit queues j, or says why not (shutting down, queue full).
func (s *Server) submit(j *job) error {
	select {
	case <-s.closing:
		return errorf(http.StatusServiceUnavailable, "the server is shutting down")
	default:
	}
	if !s.b.submit(j) {
		he := errorf(http.StatusTooManyRequests, "the queue is full (%d images waiting); retry later", s.cfg.Queue)
		he.retryAfter = s.b.retryAfter()
		return he
	}
	return nil
}

// await queues one image and waits for its caption.
func (s *Server) await(ctx context.Context, px []float32, opt generate.Options) (result, error) {
	return s.awaitJob(ctx, s.newJob(ctx, px, opt))
}

// awaitJob queues j and waits for its captions.
func (s *Server) awaitJob(ctx context.Context, j *job) (result, error) {
	if err := s.submit(j); err != nil {
		return result{}, err
	}
	select {
	case res := <-j.done:
		if res.err != nil {
			if ctx.Err() != nil {
				return res, s.timeoutErr(ctx)
			}
			return res, computeErr(res.err)
		}
		return res, nil
	case <-ctx.Done():
		return result{}, s.timeoutErr(ctx)
	}
}

func (s *Server) timeoutErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errorf(http.StatusGatewayTimeout, "no caption within the %v request timeout", s.cfg.Timeout)
	}
	return errorf(499, "client closed the request")
}

// parseOptions reads strategy, beam, temperature, seed and max_tokens.
func (s *Server) parseOptions(form map[string][]string) (generate.Options, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	var o generate.Options
	st, err := generate.ParseStrategy(get("strategy"))
	if err != nil {
		return o, errorf(http.StatusBadRequest, "%v", err)
	}
	o.Strategy = st
	maxTok := int(s.c.Model.Cfg.GPT2.NPositions - s.c.Model.PrefixLength())
	ints := []struct {
		key    string
		dst    *int
		lo, hi int
	}{{"beam", &o.BeamSize, 1, s.cfg.MaxBeam}, {"max_tokens", &o.MaxTokens, 1, min(maxTok, s.cfg.MaxTokens)}}
	for _, f := range ints {
		if v := get(f.key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < f.lo || n > f.hi {
				return o, errorf(http.StatusBadRequest, "%s %q: want an integer from %d to %d (this server's limit)", f.key, v, f.lo, f.hi)
			}
			*f.dst = n
		}
	}
	if v := get("seed"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return o, errorf(http.StatusBadRequest, "seed %q: want an integer", v)
		}
		o.Seed = n
	}
	if v := get("temperature"); v != "" {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil || !(t > 0 && t <= 10) {
			return o, errorf(http.StatusBadRequest, "temperature %q: want a number in (0, 10]", v)
		}
		o.Temperature = t
	}
	// The model's own defaults obey the server's caps too.
	o = s.c.DecodeOptions(o)
	o.BeamSize = min(o.BeamSize, s.cfg.MaxBeam)
	o.MaxTokens = min(o.MaxTokens, s.cfg.MaxTokens)
	return o, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
