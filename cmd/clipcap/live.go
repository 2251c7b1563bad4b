package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/live"
	"github.com/clipcap/clipcap/model/generate"
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
	model := fs.String("model", "", "model directory or released model name, e.g. clipcap-coco (required)")
	source := fs.String("source", "", "camera index (0), device (/dev/video0), video file or stream URL (required)")
	output := fs.String("output", "", "write a copy of the video with captions burned in")
	subs := fs.String("subtitles", "", "write WebVTT (.vtt) or SRT (.srt) subtitles")
	every := fs.Duration("every", 0, "caption one frame per interval of timestamps (files: every sample, deterministic)")
	strategy := fs.String("strategy", "", "greedy, beam or sample (default: the model's)")
	beam := fs.Int("beam", 0, "beam size (default: the model's)")
	maxTokens := fs.Int("max-tokens", 0, "maximum caption tokens (default: the model's)")
	confirm := fs.Int("confirm", live.DefaultSmoothing.Confirm, "frames a new caption must win in a row before it is shown (1: no smoothing)")
	margin := fs.Float64("margin", live.DefaultSmoothing.Margin, "per-token log-prob lead that shows a new caption at once (negative: off)")
	noWindow := fs.Bool("no-window", false, "never open a window, even when a display exists")
	device := fs.String("device", "auto", "cpu, cuda, cuda:N or auto")
	clipArg := fs.String("clip", "", "CLIP weights or OpenAI name overriding the model dir's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || *source == "" {
		return fmt.Errorf("live: --model and --source are required")
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
	ctx, stop := signalContext()
	defer stop()
	st, err := live.Run(ctx, c, live.Options{Source: *source, Output: *output, Subtitles: *subs, Every: *every,
		Gen:    generate.Options{Strategy: generate.Strategy(*strategy), BeamSize: *beam, MaxTokens: *maxTokens},
		Window: !*noWindow, Smooth: live.Smoothing{Confirm: *confirm, Margin: *margin}, Log: os.Stdout})
	fmt.Fprintf(os.Stderr, "live: %d frames, %d captioned, %d dropped, %d cues, latency p50 %v p95 %v\n",
		st.Frames, st.Captioned, st.Dropped, st.Cues, st.P50.Round(time.Millisecond), st.P95.Round(time.Millisecond))
	return err
}
