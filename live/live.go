// Package live captions a camera, a video file or a stream in real time:
// ffmpeg decodes the source to raw RGB24 frames on a pipe, the newest
// frame is captioned through the caption package (the one inference path),
// captions are smoothed against flicker, and the result is shown in a
// window, burned into a video copy and/or written as WebVTT/SRT cues.
//
// Real-time mode never queues frames: a reader overwrites a one-slot buffer
// and the captioner takes whatever is newest when it becomes free, so
// latency does not accumulate. With Every set on a file, frames are instead
// sampled by timestamp and every sample is captioned, as fast as the model
// allows, deterministically.
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/model/generate"
)

// Options configure Run.
type Options struct {
	Source    string        // camera index or device, video file, or URL
	Output    string        // video file to burn captions into ("": none)
	Subtitles string        // .vtt or .srt file ("": none)
	Every     time.Duration // sample frames this far apart by timestamp
	Gen       generate.Options
	Window    bool // show a window when $DISPLAY (or $WAYLAND_DISPLAY) is set
	Smooth    Smoothing
	Log       io.Writer   // one line per caption change; nil: quiet
	OnCaption func(Event) // called after every captioned frame
	// Overlap (real-time mode) encodes the next frame with CLIP while the
	// current one decodes, timed so the encoding ends with the decoding.
	Overlap bool
}

// Event reports one captioned frame.
type Event struct {
	Frame   int
	PTS     time.Duration
	Raw     caption.Caption // the model's caption for this frame
	Shown   string          // the caption shown after smoothing
	Changed bool
	Latency time.Duration // from the frame leaving ffmpeg to its caption
}

// Stats summarize a run.
type Stats struct {
	Frames    int // decoded
	Captioned int
	Dropped   int // real-time mode: frames overwritten before captioning
	Cues      int
	P50, P95  time.Duration // caption latency
	// CaptionsPerSec is captioned frames over the time from the first
	// frame's start to the last caption.
	CaptionsPerSec float64
}

// Run captions the source until it ends or ctx is cancelled (a camera's
// normal end, e.g. on Ctrl-C); either way outputs are finalized, and a
// cancelled run returns no error.
func Run(ctx context.Context, c *caption.Captioner, opt Options) (Stats, error) {
	// libtorch's grad mode is per OS thread and ts.NoGrad switches it
	// around calls; pinning the goroutine keeps switch and call on one
	// thread (else an in-place weight copy can run with grad enabled).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if c.CLIP == nil {
		return Stats{}, errors.New("the model has no CLIP encoder, which live captioning needs (give --clip or put the encoder in the model dir)")
	}
	src, err := ParseSource(opt.Source)
	if err != nil {
		return Stats{}, err
	}
	if opt.Every < 0 {
		return Stats{}, fmt.Errorf("--every %v is negative", opt.Every)
	}
	if opt.Smooth == (Smoothing{}) {
		opt.Smooth = DefaultSmoothing
	}
	gen := c.DecodeOptions(opt.Gen)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	offline := opt.Every > 0 && src.Kind == File
	capt, err := StartCapture(ctx, src, c.Pre.NPx, !offline)
	if err != nil {
		return Stats{}, err
	}
	defer capt.Close()
	r := &runner{opt: opt, c: c, gen: gen, capt: capt, smooth: NewSmoother(opt.Smooth), cancel: cancel}
	if err := r.openOutputs(); err != nil {
		r.closeOutputs(0)
		return Stats{}, err
	}
	if offline {
		err = r.offline(ctx)
	} else {
		err = r.realtime(ctx)
	}
	if ctx.Err() != nil && !r.windowClosed {
		err = nil // cancelled from outside: a normal end
	}
	if cerr := r.closeOutputs(r.end()); err == nil {
		err = cerr
	}
	return r.stats(), err
}

type runner struct {
	opt    Options
	c      *caption.Captioner
	gen    generate.Options
	capt   *Capture
	smooth *Smoother
	cancel context.CancelFunc

	subs   *CueWriter
	enc    *sink
	window *sink

	mu           sync.Mutex // guards the fields below (reader vs captioner)
	frames       int
	dropped      int
	lastPTS      time.Duration
	latencies    []time.Duration
	lastLatency  time.Duration
	fps          float64
	lastArrival  time.Time
	shown        string // the smoothed caption, for overlays
	windowClosed bool
	started      time.Time // the first frame taken for captioning
	lastDone     time.Time // the last caption
}

func (r *runner) openOutputs() error {
	var err error
	if r.opt.Subtitles != "" {
		if r.subs, err = NewCueWriter(r.opt.Subtitles); err != nil {
			return err
		}
	}
	if r.opt.Output != "" {
		if r.enc, err = newEncoder(r.opt.Output, r.capt.W, r.capt.H, r.capt.FPS); err != nil {
			return err
		}
	}
	if r.opt.Window && (os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "") {
		if r.window, err = newWindow(r.capt.W, r.capt.H, r.capt.FPS); err != nil {
			r.logf("no window: %v", err)
			r.window = nil
		}
	}
	return nil
}

// end is when the last cue ends: the last frame's time plus one frame.
func (r *runner) end() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.lastPTS
	if r.capt.FPS > 0 {
		end += time.Duration(float64(time.Second) / r.capt.FPS)
	}
	return end
}

func (r *runner) closeOutputs(end time.Duration) error {
	var errs []error
	if r.subs != nil {
		errs = append(errs, r.subs.Close(end))
	}
	if r.enc != nil {
		errs = append(errs, r.enc.close())
	}
	if r.window != nil {
		r.window.close()
	}
	return errors.Join(errs...)
}

func (r *runner) logf(format string, args ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, format+"\n", args...)
	}
}

// offline captions every frame sampled at the Every interval, in order:
// the first frame at or after each multiple of Every.
func (r *runner) offline(ctx context.Context) error {
	var next time.Duration
	for {
		f, err := r.capt.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		r.arrived(f)
		if f.PTS >= next {
			if err := r.captionFrame(f); err != nil {
				return err
			}
			next = (f.PTS/r.opt.Every + 1) * r.opt.Every
		}
		if err := r.emit(f); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// realtime runs a reader that keeps only the newest frame and a captioner
// that takes it whenever it is free.
func (r *runner) realtime(ctx context.Context) error {
	slot := newLatest()
	readErr := make(chan error, 1)
	go func() {
		var err error
		defer func() { slot.close(); readErr <- err }()
		for {
			var f *Frame
			if f, err = r.capt.Next(); err != nil {
				if err == io.EOF {
					err = nil
				}
				return
			}
			r.arrived(f)
			if slot.put(f) {
				r.mu.Lock()
				r.dropped++
				r.mu.Unlock()
			}
			if err = r.emit(f); err != nil {
				return
			}
		}
	}()
	var capErr error
	if r.opt.Overlap {
		capErr = r.consumeOverlapped(slot)
	} else {
		capErr = r.consume(slot)
	}
	if capErr != nil {
		r.cancel()
	}
	err := <-readErr
	if capErr != nil {
		return capErr
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// consume captions the newest frame whenever the model is free.
func (r *runner) consume(slot *latest) error {
	var next time.Duration
	for {
		f, ok := r.take(slot, next)
		if !ok {
			return nil
		}
		if err := r.captionFrame(f); err != nil {
			return err
		}
		next = f.PTS + r.opt.Every
	}
}

// take waits for the newest frame at or after next (with Every) and marks
// the start of captioning for the rate.
func (r *runner) take(slot *latest, next time.Duration) (*Frame, bool) {
	for {
		f, ok := slot.take()
		if !ok {
			return nil, false
		}
		if r.opt.Every > 0 && f.PTS < next {
			continue
		}
		r.mu.Lock()
		if r.started.IsZero() {
			r.started = time.Now()
		}
		r.mu.Unlock()
		return f, true
	}
}

func (r *runner) arrived(f *Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames++
	r.lastPTS = max(r.lastPTS, f.PTS)
	if !r.lastArrival.IsZero() {
		if dt := f.Arrived.Sub(r.lastArrival).Seconds(); dt > 0 {
			inst := 1 / dt
			if r.fps == 0 {
				r.fps = inst
			} else {
				r.fps += 0.1 * (inst - r.fps) // smoothed over ~10 frames
			}
		}
	}
	r.lastArrival = f.Arrived
}

func (r *runner) captionFrame(f *Frame) error {
	caps, err := r.c.FromImages([]*imageproc.Image{f.Image()}, r.gen)
	if err != nil {
		return fmt.Errorf("frame %d (%v): %w", f.Seq, f.PTS, err)
	}
	return r.captioned(f, caps)
}

// captioned smooths, records and reports frame f's caption.
func (r *runner) captioned(f *Frame, caps []caption.Caption) error {
	lat := time.Since(f.Arrived)
	shown, changed := r.smooth.Observe(caps[0].Text, PerToken(caps[0], r.gen.Strategy))
	r.mu.Lock()
	r.latencies = append(r.latencies, lat)
	r.lastLatency = lat
	r.lastDone = time.Now()
	r.shown = shown
	r.mu.Unlock()
	if changed {
		r.logf("[%s] %s", fmtPTS(f.PTS), CueText(shown))
		if r.subs != nil {
			if err := r.subs.Show(shown, f.PTS); err != nil {
				return err
			}
		}
	}
	if r.opt.OnCaption != nil {
		r.opt.OnCaption(Event{Frame: f.Seq, PTS: f.PTS, Raw: caps[0], Shown: shown, Changed: changed, Latency: lat})
	}
	return nil
}

// emit burns the shown caption, FPS and latency into a copy of the frame
// for the video file and the window.
func (r *runner) emit(f *Frame) error {
	if r.enc == nil && r.window == nil {
		return nil
	}
	r.mu.Lock()
	status := fmt.Sprintf("%.1f fps  caption %d ms", r.fps, r.lastLatency.Milliseconds())
	shown := r.shown
	r.mu.Unlock()
	pix := append([]byte(nil), f.Pix...)
	DrawOverlay(pix, f.W, f.H, CueText(shown), status)
	if r.enc != nil {
		if err := r.enc.write(pix); err != nil {
			return err
		}
	}
	if r.window != nil {
		if err := r.window.write(pix); err != nil {
			// The user closed the window: stop, as a player would.
			r.mu.Lock()
			r.windowClosed = true
			r.mu.Unlock()
			r.cancel()
			return nil
		}
	}
	return nil
}

func (r *runner) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Frames: r.frames, Captioned: len(r.latencies), Dropped: r.dropped}
	if r.subs != nil {
		s.Cues = r.subs.Cues()
	}
	if len(r.latencies) > 0 {
		l := append([]time.Duration(nil), r.latencies...)
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		s.P50, s.P95 = Percentile(l, 0.5), Percentile(l, 0.95)
		if d := r.lastDone.Sub(r.started).Seconds(); d > 0 && !r.started.IsZero() {
			s.CaptionsPerSec = float64(len(l)) / d
		}
	}
	return s
}

// Percentile of sorted durations, nearest rank.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// PerToken is the caption's mean log-probability per token, the scale the
// smoothing margin is in: beam search's score is already length-normalized,
// greedy and sampling give a sum.
func PerToken(c caption.Caption, s generate.Strategy) float64 {
	if s == generate.Beam || len(c.Tokens) == 0 {
		return c.Score
	}
	return c.Score / float64(len(c.Tokens))
}

func fmtPTS(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d.%03d", ms/60000, ms/1000%60, ms%1000)
}

// latest is a one-slot buffer: put overwrites, take waits for a frame not
// yet taken.
type latest struct {
	mu     sync.Mutex
	cond   *sync.Cond
	f      *Frame
	closed bool
}

func newLatest() *latest {
	l := &latest{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// put stores f and reports whether it replaced a frame never taken.
func (l *latest) put(f *Frame) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	dropped := l.f != nil
	l.f = f
	l.cond.Signal()
	return dropped
}

func (l *latest) take() (*Frame, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.f == nil && !l.closed {
		l.cond.Wait()
	}
	f := l.f
	l.f = nil
	return f, f != nil
}

func (l *latest) close() {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
}
