package main

import (
	"fmt"
	"os"
	"time"

	"github.com/clipcap/clipcap/live"
)

func init() {
	register(command{name: "live", summary: "real-time captioning of a camera, video file or stream", run: runLive})
}

func runLive(args []string) error {
	fs := newFlags("live", "--model DIR --source 0|/dev/videoN|FILE|URL [--output F.mp4] [--subtitles F.vtt|F.srt] [--every D]",
		"Caption the newest frame of a camera, video file or stream (decoded by ffmpeg,\n"+
			"which must be installed: apt-get install ffmpeg). Frames arriving while the\n"+
			"model is busy are dropped, so captions never lag behind. A new caption replaces\n"+
			"the shown one after winning --confirm frames in a row, or at once when its\n"+
			"per-token log-probability beats the shown one's by --margin nats. With a display,\n"+
			"a window shows the video with caption, FPS and latency; --output burns them into\n"+
			"a copy; --subtitles writes a cue per caption. --every on a file samples a frame\n"+
			"per interval of its timestamps and captions each, faster than real time.")
	var mf modelFlags
	mf.register(fs)
	source := fs.String("source", "", "camera index (0), device (/dev/video0), video file or stream URL (required)")
	output := fs.String("output", "", "write a copy of the video with captions burned in")
	subs := fs.String("subtitles", "", "write WebVTT (.vtt) or SRT (.srt) subtitles")
	every := fs.Duration("every", 0, "caption one frame per interval of timestamps (files: every sample, deterministic)")
	var dec decodeFlags
	dec.register(fs)
	confirm := fs.Int("confirm", live.DefaultSmoothing.Confirm, "frames a new caption must win in a row before it is shown (1: no smoothing)")
	margin := fs.Float64("margin", live.DefaultSmoothing.Margin, "per-token log-prob lead that shows a new caption at once (negative: off)")
	noWindow := fs.Bool("no-window", false, "never open a window, even when a display exists")
	overlap := fs.Bool("overlap", false, "encode the next frame with CLIP while the current one decodes (pays off only\nwhen the cores are not all busy with either: on 2 cores it raised latency)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *source == "" {
		return usagef("--source is required")
	}
	gen, err := dec.options()
	if err != nil {
		return err
	}
	c, unlock, err := mf.loadCaptioner("")
	if err != nil {
		return err
	}
	defer unlock()
	ctx, stop := signalContext()
	defer stop()
	st, err := live.Run(ctx, c, live.Options{Source: *source, Output: *output, Subtitles: *subs, Every: *every,
		Gen:    gen,
		Window: !*noWindow, Smooth: live.Smoothing{Confirm: *confirm, Margin: *margin}, Log: os.Stdout, Overlap: *overlap})
	fmt.Fprintf(os.Stderr, "live: %d frames, %d captioned, %d dropped, %d cues, latency p50 %v p95 %v, %.2f captions/s\n",
		st.Frames, st.Captioned, st.Dropped, st.Cues, st.P50.Round(time.Millisecond), st.P95.Round(time.Millisecond), st.CaptionsPerSec)
	return err
}
