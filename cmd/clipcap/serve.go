package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/serve"
)

func init() {
	register(command{name: "serve", summary: "HTTP captioning API and web page", run: runServe})
}

func runServe(args []string) error {
	fs := newFlags("serve", "--model DIR --addr HOST:PORT [--max-batch N] [--max-wait D] [--queue N] [--max-body BYTES] [--timeout D] [--api-key KEY] [--allowed-hosts H,...] [limits: --help]",
		"Serve POST /v1/captions (image body or multipart field \"image\"; query/form options\n"+
			"strategy, beam, temperature, max_tokens), a WebSocket camera stream at /v1/stream,\n"+
			"an OpenAI-compatible POST /v1/chat/completions (image_url parts) and GET /v1/models,\n"+
			"the web page at /, /healthz and /metrics. Concurrent requests are batched into one\n"+
			"forward pass. SIGTERM or Ctrl-C finishes the requests in flight, then exits.")
	var mf modelFlags
	mf.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	maxBatch := fs.Int("max-batch", 8, "images per forward pass")
	maxWait := fs.Duration("max-wait", 0, "how long a batch waits to fill (default 10ms)")
	queue := fs.Int("queue", 64, "images that may wait; more are answered 429")
	maxBody := fs.Int64("max-body", 10<<20, "request body limit in bytes (413 beyond)")
	timeout := fs.Duration("timeout", 0, "per-request limit, queueing included (default 30s; 504 beyond)")
	lim := serveLimitFlags(fs)
	allowFetch := fs.Bool("allow-fetch", false, "let /v1/chat/completions fetch http(s) image URLs (the server makes requests clients choose)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, unlock, err := mf.loadCaptioner("")
	if err != nil {
		return err
	}
	defer unlock()
	cfg := lim.config()
	cfg.MaxBatch, cfg.MaxWait, cfg.Queue, cfg.MaxBody, cfg.Timeout = *maxBatch, *maxWait, *queue, *maxBody, *timeout
	cfg.AllowFetch, cfg.ModelName = *allowFetch, filepath.Base(filepath.Clean(*mf.model))
	s, err := serve.New(c, cfg)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return s.ListenAndServe(ctx, *addr, func(a net.Addr) {
		fmt.Fprintf(os.Stderr, "serve: listening on http://%s/\n", a)
	})
}
