package live

import (
	"flag"
	"fmt"
	"time"
)

// Flags are `clipcap live`'s command line for the run (the model's and the
// decoding flags are the CLI's shared ones): Options plus --no-window,
// which Parsed turns into Options.Window.
type Flags struct {
	Options
	NoWindow bool
}

// RegisterFlags defines live's flags on fs.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Source, "source", "", "camera index (0), device (/dev/video0), video file or stream URL (required)")
	fs.StringVar(&f.Output, "output", "", "write a copy of the video with captions burned in")
	fs.StringVar(&f.Subtitles, "subtitles", "", "write WebVTT (.vtt) or SRT (.srt) subtitles")
	fs.DurationVar(&f.Every, "every", 0, "caption one frame per interval of timestamps (files: every sample, deterministic)")
	fs.IntVar(&f.Smooth.Confirm, "confirm", DefaultSmoothing.Confirm, "frames a new caption must win in a row before it is shown (1: no smoothing)")
	fs.Float64Var(&f.Smooth.Margin, "margin", DefaultSmoothing.Margin, "per-token log-prob lead that shows a new caption at once (negative: off)")
	fs.BoolVar(&f.NoWindow, "no-window", false, "never open a window, even when a display exists")
	fs.BoolVar(&f.Overlap, "overlap", false, "encode the next frame with CLIP while the current one decodes (pays off only\nwhen the cores are not all busy with either: on 2 cores it raised latency)")
}

// Parsed returns the Options the parsed flags describe.
func (f *Flags) Parsed() Options {
	o := f.Options
	o.Window = !f.NoWindow
	return o
}

// String is the run's one-line summary.
func (s Stats) String() string {
	return fmt.Sprintf("%d frames, %d captioned, %d dropped, %d cues, latency p50 %v p95 %v, %.2f captions/s",
		s.Frames, s.Captioned, s.Dropped, s.Cues, s.P50.Round(time.Millisecond), s.P95.Round(time.Millisecond), s.CaptionsPerSec)
}
