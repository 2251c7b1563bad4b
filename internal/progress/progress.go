// Package progress is the one progress reporter of every long job (train,
// eval, extract, downloads): a drawn bar with rate and ETA when the output
// is a terminal, and otherwise a plain log line every so often, so the logs
// of cluster jobs and CI stay readable instead of filling with redraws.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar counts done units of a job of Total units. A nil *Bar does nothing,
// so callers need no checks. Its methods are safe for concurrent use.
type Bar struct {
	mu      sync.Mutex
	bar     *progressbar.ProgressBar // terminal: drawn
	w       io.Writer                // otherwise: log lines
	desc    string
	unit    string
	bytes   bool
	total   int64
	done    int64
	every   int64 // log a line each time done crosses a multiple of every
	next    int64
	start   time.Time
	startAt int64
}

// Options describe a Bar.
type Options struct {
	Desc  string // what is counted down, e.g. "extract"
	Unit  string // plural unit, e.g. "images" ("bytes" formats sizes)
	Every int64  // log-line interval in units when not on a terminal; 0: 10% of Total
	Done  int64  // units already done (a resumed job)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New returns a Bar writing to w, or nil when w is nil or total <= 0.
func New(w io.Writer, total int64, o Options) *Bar {
	if w == nil || total <= 0 {
		return nil
	}
	b := &Bar{w: w, desc: o.Desc, unit: o.Unit, bytes: o.Unit == "bytes", total: total, done: o.Done,
		every: o.Every, start: time.Now(), startAt: o.Done}
	if b.every <= 0 {
		b.every = max(total/10, 1)
	}
	b.next = (b.done/b.every + 1) * b.every
	if IsTerminal(w) {
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(o.Desc),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200 * time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		}
		if b.bytes {
			opts = append(opts, progressbar.OptionShowBytes(true))
		} else {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(o.Unit))
		}
		b.bar = progressbar.NewOptions64(total, opts...)
		b.bar.Set64(o.Done)
	}
	return b
}

// Add counts n more done units.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.bar != nil {
		b.bar.Add64(n)
		return
	}
	if b.done >= b.next && b.done < b.total {
		b.line()
		b.next = (b.done/b.every + 1) * b.every
	}
}

// Describe changes the description (the bar's text, or the next log line's).
func (b *Bar) Describe(desc string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.desc = desc
	if b.bar != nil {
		b.bar.Describe(desc)
	}
}

// Finish completes the bar, or logs the final line.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Finish()
		return
	}
	b.line()
}

// line logs "desc: done/total unit (pct), rate, ETA" (b.mu held).
func (b *Bar) line() {
	el := time.Since(b.start).Seconds()
	rate := float64(b.done-b.startAt) / max(el, 1e-9)
	eta := ""
	if rate > 0 && b.done < b.total {
		eta = fmt.Sprintf(", ETA %v", (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second))
	}
	pct := 100 * float64(b.done) / float64(b.total)
	if b.bytes {
		fmt.Fprintf(b.w, "%s: %s of %s (%.0f%%), %s/s%s\n", b.desc, size(b.done), size(b.total), pct, size(int64(rate)), eta)
		return
	}
	fmt.Fprintf(b.w, "%s: %d/%d %s (%.0f%%), %.1f %s/s%s\n", b.desc, b.done, b.total, b.unit, pct, rate, b.unit, eta)
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Write counts len(p) done units, so a Bar counting bytes can sit in an
// io.MultiWriter beside the file a download fills.
func (b *Bar) Write(p []byte) (int, error) {
	b.Add(int64(len(p)))
	return len(p), nil
}

// Stop ends a bar that will not complete (a failed download) without
// claiming it did: the drawn bar is closed, no final line is logged.
func (b *Bar) Stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Exit()
	}
}
