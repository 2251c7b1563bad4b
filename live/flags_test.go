package live

import (
	"testing"
	"time"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func TestFlagsSetOptions(t *testing.T) {
	parse := func(args ...string) Options {
		var f Flags
		flagtest.Parse(t, f.RegisterFlags, args...)
		return f.Parsed()
	}
	if o := parse(); !o.Window || o.Smooth != DefaultSmoothing || o.Overlap || o.Every != 0 {
		t.Errorf("defaults %+v", o)
	}
	o := parse("--source", "v.mp4", "--every", "2s", "--confirm", "1", "--margin", "-1", "--no-window", "--overlap", "--subtitles", "s.vtt")
	if o.Source != "v.mp4" || o.Every != 2*time.Second || o.Smooth != (Smoothing{Confirm: 1, Margin: -1}) || o.Window || !o.Overlap || o.Subtitles != "s.vtt" {
		t.Errorf("options %+v", o)
	}
}

func TestStatsString(t *testing.T) {
	s := Stats{Frames: 10, Captioned: 4, Dropped: 6, Cues: 2, P50: 1234567 * time.Nanosecond, P95: 2 * time.Second, CaptionsPerSec: 1.5}
	if got, want := s.String(), "10 frames, 4 captioned, 6 dropped, 2 cues, latency p50 1ms p95 2s, 1.50 captions/s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
