package serve

import (
	"flag"
	"os"
	"strings"
	"time"

	"github.com/clipcap/clipcap/data/imageproc"
)

// Flags are `clipcap serve`'s command line for the server (the model's
// flags are the CLI's shared ones): Config plus the listen address and
// --allowed-hosts as typed.
type Flags struct {
	Config
	Addr         string
	allowedHosts string
}

// RegisterFlags defines serve's flags on fs. Zero defaults mean Config's
// own (shown in the help text in brackets there, in words here).
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.IntVar(&f.MaxBatch, "max-batch", 8, "images per forward pass")
	fs.DurationVar(&f.MaxWait, "max-wait", 0, "how long a batch waits to fill (default 10ms)")
	fs.IntVar(&f.Queue, "queue", 64, "images that may wait; more are answered 429")
	fs.Int64Var(&f.MaxBody, "max-body", 10<<20, "request body limit in bytes (413 beyond)")
	fs.DurationVar(&f.Timeout, "timeout", 0, "per-request limit, queueing included (default 30s; 504 beyond)")
	// What one request may cost and who may send it (README: "Running serve safely").
	fs.IntVar(&f.MaxPixels, "max-pixels", imageproc.UntrustedMaxPixels, "images declaring more pixels are refused from their header (413)")
	fs.IntVar(&f.DecodeSlots, "decode-slots", 0, "images decoded at once (default: number of CPUs)")
	fs.Int64Var(&f.DecodeMemory, "decode-memory", 1<<30, "estimated bytes of images being decoded at once")
	fs.DurationVar(&f.BodyTimeout, "body-timeout", 30*time.Second, "a request body must arrive within this (408)")
	fs.Int64Var(&f.MinBodyRate, "min-body-rate", 16<<10, "after its first second a body must average this many bytes/s (408)")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", 60*time.Second, "idle keep-alive connections are closed after this")
	fs.IntVar(&f.MaxBeam, "max-beam", 8, "largest beam a request may ask for")
	fs.IntVar(&f.MaxTokens, "max-tokens", 67, "largest max_tokens a request may ask for")
	fs.StringVar(&f.APIKey, "api-key", os.Getenv("CLIPCAP_API_KEY"), "require \"Authorization: Bearer KEY\" (default $CLIPCAP_API_KEY; the page and /healthz stay open)")
	fs.StringVar(&f.allowedHosts, "allowed-hosts", "", "comma-separated host names accepted in Host besides IPs, localhost and --addr's (* = any)")
	fs.BoolVar(&f.AllowFetch, "allow-fetch", false, "let /v1/chat/completions fetch http(s) image URLs (the server makes requests clients choose)")
}

// Parsed returns the Config the parsed flags describe.
func (f *Flags) Parsed() Config {
	c := f.Config
	c.AllowedHosts = nil
	for _, h := range strings.Split(f.allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.AllowedHosts = append(c.AllowedHosts, h)
		}
	}
	return c
}
