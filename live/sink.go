package live

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// sink is an ffmpeg or ffplay process reading raw RGB24 frames on stdin.
type sink struct {
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	stderr tailBuffer
	broken bool
}

// tailBuffer collects a process's stderr for error messages. exec copies
// into it from its own goroutine while write may read it, so it locks; and
// it keeps only the last maxTail bytes, as a chatty process could grow it
// without bound.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const maxTail = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > maxTail {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxTail:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func rawInputArgs(w, h int, fps float64) []string {
	if fps <= 0 {
		fps = 30
	}
	return []string{"-f", "rawvideo", "-pixel_format", "rgb24", "-video_size", fmt.Sprintf("%dx%d", w, h),
		"-framerate", strconv.FormatFloat(fps, 'f', -1, 64), "-i", "pipe:0"}
}

// newEncoder burns frames into a video file; the container follows the
// file's extension, and yuv420p (padded to even sides) plays everywhere.
func newEncoder(path string, w, h int, fps float64) (*sink, error) {
	args := append([]string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"}, rawInputArgs(w, h, fps)...)
	args = append(args, "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p")
	if ext := strings.ToLower(path); strings.HasSuffix(ext, ".mp4") || strings.HasSuffix(ext, ".mkv") || strings.HasSuffix(ext, ".mov") {
		args = append(args, "-preset", "veryfast")
	}
	return startSink("output "+path, "ffmpeg", append(args, fileURL(path)))
}

// newWindow shows frames in an ffplay window.
func newWindow(w, h int, fps float64) (*sink, error) {
	args := append([]string{"-hide_banner", "-loglevel", "error", "-window_title", "clipcap live", "-fflags", "nobuffer"}, rawInputArgs(w, h, fps)...)
	return startSink("window", "ffplay", args)
}

func startSink(name, tool string, args []string) (*sink, error) {
	s := &sink{name: name, cmd: exec.Command(tool, args...)}
	s.cmd.Stderr = &s.stderr
	in, err := s.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	s.in = in
	if err := s.cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errNoFFmpeg(tool)
		}
		return nil, fmt.Errorf("%s: starting %s: %w", name, tool, err)
	}
	return s, nil
}

// write sends one frame; an error means the process went away (for the
// window: the user closed it).
func (s *sink) write(pix []byte) error {
	if s.broken {
		return nil
	}
	if _, err := s.in.Write(pix); err != nil {
		s.broken = true
		return fmt.Errorf("%s: %v: %s", s.name, err, strings.TrimSpace(s.stderr.String()))
	}
	return nil
}

// close ends the input and waits, so a video file is finalized.
func (s *sink) close() error {
	s.in.Close()
	if err := s.cmd.Wait(); err != nil && !s.broken {
		return fmt.Errorf("%s: %v: %s", s.name, err, strings.TrimSpace(s.stderr.String()))
	}
	return nil
}
