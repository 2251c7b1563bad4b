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
	mf.RegisterFlags(fs)
	var sf serve.Flags
	sf.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, unlock, err := mf.loadCaptioner("")
	if err != nil {
		return err
	}
	defer unlock()
	cfg := sf.Parsed()
	cfg.ModelName = filepath.Base(filepath.Clean(mf.Model))
	s, err := serve.New(c, cfg)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return s.ListenAndServe(ctx, sf.Addr, func(a net.Addr) {
		fmt.Fprintf(os.Stderr, "serve: listening on http://%s/\n", a)
	})
}
