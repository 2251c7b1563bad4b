package live

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// CueWriter writes WebVTT or SRT subtitles: one cue per shown caption, from
// the frame time it appeared to the frame time it was replaced. Cues are
// written (and flushed) as they close, so an interrupted run keeps them.
type CueWriter struct {
	path  string
	f     *os.File
	w     *bufio.Writer
	srt   bool
	n     int
	open  bool
	text  string
	start time.Duration
}

// NewCueWriter creates path; its extension (.vtt or .srt) picks the format.
func NewCueWriter(path string) (*CueWriter, error) {
	var srt bool
	switch strings.ToLower(filepath.Ext(path)) {
	case ".vtt":
	case ".srt":
		srt = true
	default:
		return nil, fmt.Errorf("subtitles %s: unknown extension (use .vtt or .srt)", path)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("subtitles: %w", err)
	}
	cw := &CueWriter{path: path, f: f, w: bufio.NewWriter(f), srt: srt}
	if !srt {
		cw.w.WriteString("WEBVTT\n\n")
	}
	return cw, cw.flush()
}

// Show makes text the caption from time at on, closing the current cue at
// at. Text is cleaned by CueText; an empty result shows nothing.
func (cw *CueWriter) Show(text string, at time.Duration) error {
	text = CueText(text)
	if cw.open && text == cw.text {
		return nil
	}
	if err := cw.closeCue(at); err != nil {
		return err
	}
	if text != "" {
		cw.open, cw.text, cw.start = true, text, at
	}
	return nil
}

func (cw *CueWriter) closeCue(end time.Duration) error {
	if !cw.open {
		return nil
	}
	cw.open = false
	if end <= cw.start {
		// A cue must last; a caption replaced at its own timestamp
		// (possible with equal frame times) gets one millisecond.
		end = cw.start + time.Millisecond
	}
	cw.n++
	text := cw.text
	if !cw.srt {
		text = vttEscape(text)
	}
	fmt.Fprintf(cw.w, "%d\n%s --> %s\n%s\n\n", cw.n, cw.stamp(cw.start), cw.stamp(end), text)
	return cw.flush()
}

// Close ends the last cue at end and closes the file.
func (cw *CueWriter) Close(end time.Duration) error {
	err := cw.closeCue(end)
	if cerr := cw.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Cues is the number of cues written so far.
func (cw *CueWriter) Cues() int { return cw.n }

func (cw *CueWriter) flush() error {
	if err := cw.w.Flush(); err != nil {
		return fmt.Errorf("subtitles %s: %w", cw.path, err)
	}
	return nil
}

// stamp formats hh:mm:ss.mmm (VTT) or hh:mm:ss,mmm (SRT).
func (cw *CueWriter) stamp(d time.Duration) string {
	ms := d.Milliseconds()
	sep := "."
	if cw.srt {
		sep = ","
	}
	return fmt.Sprintf("%02d:%02d:%02d%s%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}

// CueText makes a caption safe for a cue on one line: invalid UTF-8 and
// control characters become U+FFFD or spaces, "-->" (the timing arrow) is
// broken, and runs of space collapse.
func CueText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.ReplaceAll(s, "-->", "->")
	return strings.Join(strings.Fields(s), " ")
}

// vttEscape writes cue text as WebVTT wants it: "&", "<" and ">" as
// character references, so a caption is never read as markup (a "<"
// would open a tag) and no "-->" can appear. SRT has no escapes; its cues
// rely on CueText breaking the arrow.
var vttEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace
