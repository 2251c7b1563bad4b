package main

import (
	"flag"
	"os"
	"strings"
	"time"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/serve"
)

// serveLimits holds serve's flags for what one request may cost and who
// may send it (README: "Running serve safely").
type serveLimits struct {
	maxPixels, decodeSlots, maxBeam, maxTokens *int
	decodeMemory, minBodyRate                  *int64
	bodyTimeout, idleTimeout                   *time.Duration
	apiKey, allowedHosts                       *string
}

func serveLimitFlags(fs *flag.FlagSet) *serveLimits {
	return &serveLimits{
		maxPixels:    fs.Int("max-pixels", imageproc.UntrustedMaxPixels, "images declaring more pixels are refused from their header (413)"),
		decodeSlots:  fs.Int("decode-slots", 0, "images decoded at once (default: number of CPUs)"),
		decodeMemory: fs.Int64("decode-memory", 1<<30, "estimated bytes of images being decoded at once"),
		bodyTimeout:  fs.Duration("body-timeout", 30*time.Second, "a request body must arrive within this (408)"),
		minBodyRate:  fs.Int64("min-body-rate", 16<<10, "after its first second a body must average this many bytes/s (408)"),
		idleTimeout:  fs.Duration("idle-timeout", 60*time.Second, "idle keep-alive connections are closed after this"),
		maxBeam:      fs.Int("max-beam", 8, "largest beam a request may ask for"),
		maxTokens:    fs.Int("max-tokens", 67, "largest max_tokens a request may ask for"),
		apiKey:       fs.String("api-key", os.Getenv("CLIPCAP_API_KEY"), "require \"Authorization: Bearer KEY\" (default $CLIPCAP_API_KEY; the page and /healthz stay open)"),
		allowedHosts: fs.String("allowed-hosts", "", "comma-separated host names accepted in Host besides IPs, localhost and --addr's (* = any)"),
	}
}

func (l *serveLimits) config() serve.Config {
	var hosts []string
	for _, h := range strings.Split(*l.allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return serve.Config{MaxPixels: *l.maxPixels, DecodeSlots: *l.decodeSlots, DecodeMemory: *l.decodeMemory,
		BodyTimeout: *l.bodyTimeout, MinBodyRate: *l.minBodyRate, IdleTimeout: *l.idleTimeout,
		MaxBeam: *l.maxBeam, MaxTokens: *l.maxTokens, APIKey: *l.apiKey, AllowedHosts: hosts}
}
