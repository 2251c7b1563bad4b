package main

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/serve"
)

func init() {
	register(command{name: "serve", summary: "HTTP captioning API and web page", run: runServe})
}

func runServe(args []string) error {
	fs := newFlags("serve", "--model DIR --addr HOST:PORT [--max-batch N] [--max-wait D] [--queue N] [--max-body BYTES] [--timeout D]",
		"Serve POST /v1/captions (image body or multipart field \"image\"; query/form options\n"+
			"strategy, beam, temperature, max_tokens), a WebSocket camera stream at /v1/stream,\n"+
			"the web page at /, /healthz and /metrics. Concurrent requests are batched into one\n"+
			"forward pass. SIGTERM or Ctrl-C finishes the requests in flight, then exits.")
	model := fs.String("model", "", "model directory or released model name, e.g. clipcap-coco (required)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	maxBatch := fs.Int("max-batch", 8, "images per forward pass")
	maxWait := fs.Duration("max-wait", 0, "how long a batch waits to fill (default 10ms)")
	queue := fs.Int("queue", 64, "images that may wait; more are answered 429")
	maxBody := fs.Int64("max-body", 10<<20, "request body limit in bytes (413 beyond)")
	timeout := fs.Duration("timeout", 0, "per-request limit, queueing included (default 30s; 504 beyond)")
	device := fs.String("device", "auto", "cpu, cuda, cuda:N or auto")
	clipArg := fs.String("clip", "", "CLIP weights or OpenAI name overriding the model dir's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("serve: --model is required")
	}
	// libtorch's grad mode is per OS thread: keep loading on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := torchrt.ParseDevice(*device)
	if err != nil {
		return err
	}
	c, err := caption.Load(*model, caption.Options{Device: dev, CLIP: *clipArg})
	if err != nil {
		return err
	}
	s, err := serve.New(c, serve.Config{MaxBatch: *maxBatch, MaxWait: *maxWait, Queue: *queue, MaxBody: *maxBody, Timeout: *timeout})
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	return s.ListenAndServe(ctx, *addr, func(a net.Addr) {
		fmt.Fprintf(os.Stderr, "serve: listening on http://%s/\n", a)
	})
}
