package main

import (
	"fmt"
	"os"

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
	mf.RegisterFlags(fs)
	var lf live.Flags
	lf.RegisterFlags(fs)
	var dec decodeFlags
	dec.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if lf.Source == "" {
		return usagef("--source is required")
	}
	opt := lf.Parsed()
	var err error
	if opt.Gen, err = dec.options(); err != nil {
		return err
	}
	c, unlock, err := mf.loadCaptioner("")
	if err != nil {
		return err
	}
	defer unlock()
	ctx, stop := signalContext()
	defer stop()
	opt.Log = os.Stdout
	st, err := live.Run(ctx, c, opt)
	fmt.Fprintf(os.Stderr, "live: %v\n", st)
	return err
}
