package live

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clipcap/clipcap/data/imageproc"
)

// SourceKind says how ffmpeg opens a source.
type SourceKind int

const (
	File   SourceKind = iota // a video file, decoded as fast as asked
	Camera                   // a V4L2 device (/dev/videoN, or N for short)
	Stream                   // a URL: rtsp://, http(s)://, udp://, ...
)

// Source is a parsed --source value.
type Source struct {
	Kind SourceKind
	Path string // the file, device or URL given to ffmpeg
}

// ParseSource reads a camera index ("0"), a device ("/dev/video0"), a URL
// ("rtsp://host/x") or a video file path, which must exist.
func ParseSource(spec string) (Source, error) {
	switch {
	case spec == "":
		return Source{}, errors.New("no source: give a camera index (0), a device (/dev/video0), a video file or a stream URL")
	case isDigits(spec):
		return Source{Kind: Camera, Path: "/dev/video" + spec}, nil
	case strings.HasPrefix(spec, "/dev/video"):
		return Source{Kind: Camera, Path: spec}, nil
	case strings.Contains(spec, "://"):
		return Source{Kind: Stream, Path: spec}, nil
	}
	st, err := os.Stat(spec)
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", spec, err)
	}
	if st.IsDir() {
		return Source{}, fmt.Errorf("source %s is a directory, not a video file", spec)
	}
	return Source{Kind: File, Path: spec}, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// inputArgs are ffmpeg/ffprobe arguments that open the source.
func (s Source) inputArgs() []string {
	if s.Kind == Camera {
		return []string{"-f", "v4l2", "-i", s.Path}
	}
	if s.Kind == File {
		return []string{"-i", fileURL(s.Path)}
	}
	return []string{"-i", s.Path}
}

// fileURL makes a path an explicit ffmpeg file: URL, so a name such as
// "-x.mp4" or "concat:a|b" (ffmpeg would read "proto:" as a protocol) is
// only ever the file of that name.
func fileURL(path string) string { return "file:" + path }

// Frame is one decoded RGB24 frame.
type Frame struct {
	Seq     int           // index in the decoded stream, from 0
	PTS     time.Duration // presentation time given by the source
	Arrived time.Time     // when it was read off the pipe
	W, H    int
	Pix     []byte // W*H*3 bytes, row-major RGB
}

// Image wraps the frame's pixels (not copied) as an RGB imageproc.Image, so
// frames get the same CLIP preprocessing as image files.
func (f *Frame) Image() *imageproc.Image {
	return &imageproc.Image{Mode: imageproc.ModeRGB, Width: f.W, Height: f.H, Pix: f.Pix}
}

// Probe is what ffprobe says about the first video stream.
type Probe struct {
	W, H int
	FPS  float64 // 0 when unknown
}

// ProbeSource asks ffprobe for the size and frame rate.
func ProbeSource(ctx context.Context, s Source) (Probe, error) {
	args := append([]string{"-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate", "-of", "json"}, s.inputArgs()...)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return Probe{}, errNoFFmpeg("ffprobe")
		}
		return Probe{}, fmt.Errorf("source %s: ffprobe failed: %v: %s", s.Path, err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Streams []struct {
			Width, Height int
			Avg           string `json:"avg_frame_rate"`
			R             string `json:"r_frame_rate"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return Probe{}, fmt.Errorf("source %s: reading ffprobe's answer: %w", s.Path, err)
	}
	if len(res.Streams) == 0 || res.Streams[0].Width <= 0 || res.Streams[0].Height <= 0 {
		return Probe{}, fmt.Errorf("source %s has no video stream", s.Path)
	}
	st := res.Streams[0]
	p := Probe{W: st.Width, H: st.Height, FPS: parseRate(st.Avg)}
	if p.FPS == 0 {
		p.FPS = parseRate(st.R)
	}
	return p, nil
}

func errNoFFmpeg(tool string) error {
	return fmt.Errorf("%s not found on PATH: install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)", tool)
}

// parseRate reads ffprobe's "num/den" rates; "0/0" and junk give 0.
func parseRate(r string) float64 {
	num, den, ok := strings.Cut(r, "/")
	n, err1 := strconv.ParseFloat(num, 64)
	if !ok {
		if err1 != nil {
			return 0
		}
		return n
	}
	d, err2 := strconv.ParseFloat(den, 64)
	if err1 != nil || err2 != nil || d == 0 || n <= 0 {
		return 0
	}
	return n / d
}

// CaptureSize is the size frames are decoded at: the source's own, scaled
// up (keeping the aspect ratio, even sides) when its short side is below
// minShort so that CLIP's center crop sees no upsampling artefacts of its
// own making.
func CaptureSize(w, h, minShort int) (int, int) {
	short := min(w, h)
	if short >= minShort || short == 0 {
		return w, h
	}
	scale := float64(minShort) / float64(short)
	even := func(v float64) int {
		n := int(v + 0.999999)
		return n + n%2
	}
	if w <= h {
		return even(float64(minShort)), even(float64(h) * scale)
	}
	return even(float64(w) * scale), even(float64(minShort))
}

// Capture reads raw RGB24 frames from an ffmpeg subprocess. Timestamps come
// from ffmpeg's showinfo filter on stderr: its k-th report is the k-th
// frame on stdout, since -fps_mode passthrough neither drops nor repeats.
type Capture struct {
	W, H  int
	FPS   float64
	cmd   *exec.Cmd
	out   *bufio.Reader
	pts   chan time.Duration
	seq   int
	done  chan struct{} // closed when stderr is drained
	mu    sync.Mutex
	tail  []string // last stderr lines, for error messages
	src   Source
	start time.Time
}

var showinfoRE = regexp.MustCompile(`Parsed_showinfo.*\bn:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[0-9.eE+-]+)`)

// StartCapture starts ffmpeg on the source. realtime paces a file at its
// frame rate (-re), as a camera would deliver it.
func StartCapture(ctx context.Context, s Source, minShort int, realtime bool) (*Capture, error) {
	p, err := ProbeSource(ctx, s)
	if err != nil {
		return nil, err
	}
	w, h := CaptureSize(p.W, p.H, minShort)
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"}
	if realtime && s.Kind == File {
		args = append(args, "-re")
	}
	args = append(args, s.inputArgs()...)
	args = append(args, "-an", "-sn", "-dn", "-vf", fmt.Sprintf("scale=%d:%d,showinfo", w, h),
		"-fps_mode", "passthrough", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1")
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errNoFFmpeg("ffmpeg")
		}
		return nil, fmt.Errorf("source %s: starting ffmpeg: %w", s.Path, err)
	}
	c := &Capture{W: w, H: h, FPS: p.FPS, cmd: cmd, out: bufio.NewReaderSize(stdout, 1<<20),
		pts: make(chan time.Duration, 4096), done: make(chan struct{}), src: s, start: time.Now()}
	go c.readStderr(stderr)
	return c, nil
}

func (c *Capture) readStderr(r io.Reader) {
	defer close(c.done)
	defer close(c.pts)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := showinfoRE.FindStringSubmatch(line); m != nil {
			if sec, err := strconv.ParseFloat(m[1], 64); err == nil {
				c.pts <- time.Duration(sec * float64(time.Second))
			}
			continue
		}
		if strings.Contains(line, "Parsed_showinfo") {
			continue
		}
		c.mu.Lock()
		c.tail = append(c.tail, line)
		if len(c.tail) > 8 {
			c.tail = c.tail[1:]
		}
		c.mu.Unlock()
	}
	// A line over the scanner's limit ends the scan; keep draining so
	// ffmpeg never blocks on a full stderr pipe.
	_, _ = io.Copy(io.Discard, r)
}

// Next returns the next frame, or io.EOF when the source ended cleanly.
func (c *Capture) Next() (*Frame, error) {
	pix := make([]byte, c.W*c.H*3)
	if _, err := io.ReadFull(c.out, pix); err != nil {
		if errors.Is(err, io.EOF) {
			if werr := c.wait(); werr != nil {
				return nil, werr
			}
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("source %s: ffmpeg stopped inside a frame: %s", c.src.Path, c.stderrTail())
		}
		return nil, err
	}
	f := &Frame{Seq: c.seq, Arrived: time.Now(), W: c.W, H: c.H, Pix: pix}
	if pts, ok := <-c.pts; ok {
		f.PTS = max(pts, 0)
	} else {
		// No showinfo report (should not happen): time since start.
		f.PTS = f.Arrived.Sub(c.start)
	}
	c.seq++
	return f, nil
}

// wait reaps ffmpeg after stdout ended and reports a failed exit.
func (c *Capture) wait() error {
	<-c.done
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("source %s: ffmpeg failed (%v): %s", c.src.Path, err, c.stderrTail())
	}
	return nil
}

func (c *Capture) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, " | ")
}

// Close stops ffmpeg (if still running) and reaps it.
func (c *Capture) Close() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill()
		go io.Copy(io.Discard, c.out) // unblock ffmpeg's writes
		<-c.done
		_ = c.cmd.Wait()
	}
}
