package live

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/model/generate"
)

// The end-to-end tests need ffmpeg; scripts/setup.sh installs it (apt-get
// install ffmpeg). Without it they fail rather than skip, because the
// command cannot work without it either.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (apt-get install -y ffmpeg): %v", tool, err)
		}
	}
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
	fixtureCap  *caption.Captioner
)

const (
	videoW, videoH, videoFPS, videoFrames = 160, 120, 10, 30
)

// fixture writes the tiny model and a 3 s, 10 fps H.264 video (with
// B-frames, so decode order differs from presentation order) whose colours
// rotate over time, once per test binary.
func fixture(t *testing.T) (string, *caption.Captioner) {
	t.Helper()
	needFFmpeg(t)
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "clipcap-live-")
		if fixtureErr != nil {
			return
		}
		model := filepath.Join(fixtureDir, "model")
		if fixtureErr = randmodel.Write(model, randmodel.Tiny()); fixtureErr != nil {
			return
		}
		fixtureCap, fixtureErr = caption.Load(model, caption.Options{Device: gotch.CPU})
		if fixtureErr != nil {
			return
		}
		fixtureErr = ffmpeg("-f", "lavfi", "-i", fmt.Sprintf("testsrc=s=%dx%d:r=%d:d=%d,hue=H=2*PI*t/3", videoW, videoH, videoFPS, videoFrames/videoFPS),
			"-c:v", "libx264", "-g", "8", "-bf", "2", "-pix_fmt", "yuv420p", filepath.Join(fixtureDir, "in.mp4"))
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return filepath.Join(fixtureDir, "in.mp4"), fixtureCap
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func ffmpeg(args ...string) error {
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %v: %v: %s", args, err, stderr.String())
	}
	return nil
}

// pngFrames decodes every frame of video to PNG files with a separate
// ffmpeg command and reads them back with imageproc: the reference frames.
func pngFrames(t *testing.T, video string) []*imageproc.Image {
	t.Helper()
	dir := t.TempDir()
	if err := ffmpeg("-i", video, "-fps_mode", "passthrough", filepath.Join(dir, "f%04d.png")); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "f*.png"))
	sort.Strings(names)
	var out []*imageproc.Image
	for _, n := range names {
		im, err := imageproc.DecodeFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, im)
	}
	return out
}

type cue struct {
	start, end time.Duration
	text       string
}

var vttTiming = regexp.MustCompile(`^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$`)

func parseVTT(t *testing.T, path string) []cue {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(strings.TrimSpace(string(data)), "\n\n")
	if blocks[0] != "WEBVTT" {
		t.Fatalf("%s does not start with WEBVTT: %q", path, blocks[0])
	}
	var out []cue
	for i, b := range blocks[1:] {
		lines := strings.Split(b, "\n")
		m := vttTiming.FindStringSubmatch(lines[1])
		if len(lines) != 3 || lines[0] != fmt.Sprint(i+1) || m == nil {
			t.Fatalf("cue %d is malformed: %q", i+1, b)
		}
		d := func(h, mi, s, ms string) time.Duration {
			var a, b, c, e int
			fmt.Sscan(h, &a)
			fmt.Sscan(mi, &b)
			fmt.Sscan(s, &c)
			fmt.Sscan(ms, &e)
			return time.Duration(((a*60+b)*60+c)*1000+e) * time.Millisecond
		}
		// Cue text is escaped; read it back as a player would.
		text := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(lines[2])
		out = append(out, cue{d(m[1], m[2], m[3], m[4]), d(m[5], m[6], m[7], m[8]), text})
	}
	return out
}

// --every on a file captions the first frame at or after each multiple of
// the interval; the subtitles equal what FromImages says on the same
// frames (decoded separately, to PNG) after the same smoothing, timed by
// the frames' timestamps; the burned-in copy has every frame.
func TestEveryWritesSubtitlesMatchingFromImages(t *testing.T) {
	video, c := fixture(t)
	// libtorch's grad mode is per OS thread: keep this test's model calls on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := t.TempDir()
	vtt, mp4 := filepath.Join(out, "subs.vtt"), filepath.Join(out, "annotated.mp4")
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 8}
	// Without smoothing every caption change makes a cue, so the test sees
	// several; the smoothing rule itself is TestSmootherRule's.
	rule := Smoothing{Confirm: 1, Margin: -1}
	var events []Event
	st, err := Run(context.Background(), c, Options{Source: video, Subtitles: vtt, Output: mp4, Every: 500 * time.Millisecond,
		Gen: opt, Smooth: rule, OnCaption: func(e Event) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if st.Frames != videoFrames || st.Captioned != 6 || st.Dropped != 0 {
		t.Fatalf("stats %+v: want %d frames, 6 captioned, none dropped", st, videoFrames)
	}
	frames := pngFrames(t, video)
	if len(frames) != videoFrames {
		t.Fatalf("reference decode gave %d frames", len(frames))
	}
	sm := NewSmoother(rule)
	var want []cue
	distinct := map[string]bool{}
	for k := 0; k < 6; k++ {
		seq := k * 5 // 0.5 s at 10 fps
		ref, err := c.FromImages([]*imageproc.Image{frames[seq]}, opt)
		if err != nil {
			t.Fatal(err)
		}
		e := events[k]
		if e.Frame != seq || e.PTS != time.Duration(seq)*100*time.Millisecond {
			t.Fatalf("event %d is frame %d at %v, want frame %d", k, e.Frame, e.PTS, seq)
		}
		if !reflect.DeepEqual(e.Raw.Tokens, ref[0].Tokens) {
			t.Fatalf("frame %d: live tokens %v, FromImages %v", seq, e.Raw.Tokens, ref[0].Tokens)
		}
		distinct[ref[0].Text] = true
		if shown, changed := sm.Observe(ref[0].Text, PerToken(ref[0], generate.Greedy)); changed {
			if len(want) > 0 {
				want[len(want)-1].end = e.PTS
			}
			want = append(want, cue{start: e.PTS, text: CueText(shown)})
		}
	}
	want[len(want)-1].end = 3 * time.Second // last frame 2.9 s + one frame
	if len(distinct) < 2 || len(want) < 2 {
		t.Fatalf("the fixture's frames all caption alike (%v): the test would not see caption changes", distinct)
	}
	got := parseVTT(t, vtt)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cues:\n%+v\nwant\n%+v", got, want)
	}
	if st.Cues != len(want) {
		t.Errorf("Stats.Cues = %d, want %d", st.Cues, len(want))
	}
	t.Logf("%d distinct captions, %d cues: %v", len(distinct), len(got), got)

	// The annotated copy: all frames, same size, the caption band changed
	// and the middle of the picture kept.
	ann := pngFrames(t, mp4)
	if len(ann) != videoFrames || ann[0].Width != videoW || ann[0].Height != videoH {
		t.Fatalf("annotated copy: %d frames of %dx%d", len(ann), ann[0].Width, ann[0].Height)
	}
	diff := func(a, b *imageproc.Image, y0, y1, x0, x1 int) float64 {
		var s float64
		for y := y0; y < y1; y++ {
			for i := 3 * (y*videoW + x0); i < 3*(y*videoW+x1); i++ {
				d := float64(a.Pix[i]) - float64(b.Pix[i])
				s += max(d, -d)
			}
		}
		return s / float64(3*(x1-x0)*(y1-y0))
	}
	if d := diff(ann[10], frames[10], 50, 70, 0, videoW); d > 12 {
		t.Errorf("middle rows differ by %.1f on average: the picture was damaged", d)
	}
	// The caption band starts at x=2 and spans at least one glyph.
	if d := diff(ann[10], frames[10], videoH-14, videoH-4, 3, 9); d < 20 {
		t.Errorf("caption rows differ by only %.1f: no caption burned in", d)
	}
}

// Real-time mode on a file paced at its frame rate: each frame is either
// captioned or dropped (overwritten while the model was busy), and every
// caption is the model's caption of that very frame; also when the next
// frame's CLIP encoding overlaps the current frame's decoding.
func TestRealtimeCaptionsNewestFrames(t *testing.T) {
	video, c := fixture(t)
	t.Setenv("DISPLAY", "") // headless: no window even when asked
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlap=%v", overlap), func(t *testing.T) {
			// libtorch's grad mode is per OS thread: keep this test's model calls on one.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 8}
			var events []Event
			st, err := Run(context.Background(), c, Options{Source: video, Gen: opt, Window: true, Overlap: overlap,
				OnCaption: func(e Event) { events = append(events, e) }})
			if err != nil {
				t.Fatal(err)
			}
			if st.Frames != videoFrames || st.Captioned+st.Dropped != videoFrames || st.Captioned == 0 {
				t.Fatalf("stats %+v: want %d frames, each captioned or dropped", st, videoFrames)
			}
			if st.CaptionsPerSec <= 0 || st.P50 <= 0 || st.P95 < st.P50 {
				t.Errorf("stats %+v: want a rate and p50 <= p95", st)
			}
			frames := pngFrames(t, video)
			for i, e := range events {
				if i > 0 && e.Frame <= events[i-1].Frame {
					t.Fatalf("frame %d captioned after frame %d", e.Frame, events[i-1].Frame)
				}
				ref, err := c.FromImages([]*imageproc.Image{frames[e.Frame]}, opt)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(e.Raw.Tokens, ref[0].Tokens) {
					t.Fatalf("frame %d: tokens %v, FromImages %v", e.Frame, e.Raw.Tokens, ref[0].Tokens)
				}
				if e.Latency <= 0 || e.Latency > 5*time.Second {
					t.Errorf("frame %d: latency %v", e.Frame, e.Latency)
				}
			}
			t.Logf("stats %+v", st)
		})
	}
}

func TestRunErrors(t *testing.T) {
	video, c := fixture(t)
	// libtorch's grad mode is per OS thread: keep this test's model calls on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	notVideo := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notVideo, []byte("hello"), 0o644)
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Source: "/no/such.mp4"}, "/no/such.mp4"},
		{Options{Source: notVideo}, "notes.txt"},
		{Options{Source: video, Subtitles: filepath.Join(t.TempDir(), "s.txt")}, "unknown extension"},
		{Options{Source: video, Every: -time.Second}, "negative"},
	} {
		_, err := Run(context.Background(), c, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one mentioning %q", tc.opt, err, tc.want)
		}
	}
	// A cancelled run ends cleanly and still closes its subtitles file.
	ctx, cancel := context.WithCancel(context.Background())
	vtt := filepath.Join(t.TempDir(), "s.vtt")
	go func() {
		// Cancel once the run is under way (its subtitles file exists), not
		// after a fixed delay: on a loaded machine ffprobe alone can take
		// longer, and a cancel during probing is an error, not an end.
		for i := 0; i < 600; i++ {
			if _, err := os.Stat(vtt); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	if _, err := Run(ctx, c, Options{Source: video, Subtitles: vtt}); err != nil {
		t.Fatalf("cancelled run: %v", err)
	}
	if data, _ := os.ReadFile(vtt); !strings.HasPrefix(string(data), "WEBVTT") {
		t.Errorf("subtitles after cancel: %q", data)
	}
}
