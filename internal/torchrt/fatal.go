package torchrt

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// ErrOutOfMemory marks libtorch allocation failures (CUDA or CPU): the
// request that hit one can fail cleanly and the process carry on.
var ErrOutOfMemory = errors.New("out of memory")

// Error is a libtorch error raised inside one of gotch's Must* calls. With
// TrapFatal installed it is panicked instead of ending the process, so that
// a request path can recover it (see Recovered).
type Error struct {
	Msg string // libtorch's message, first line
}

func (e *Error) Error() string { return "libtorch: " + e.Msg }

// Is makes errors.Is(err, ErrOutOfMemory) true for allocation failures.
func (e *Error) Is(target error) bool { return target == ErrOutOfMemory && isOOM(e.Msg) }

func isOOM(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "out of memory") || strings.Contains(m, "can't allocate memory") ||
		strings.Contains(m, "not enough memory")
}

var trapOnce sync.Once

// TrapFatal makes a failing gotch Must* call panic with an *Error instead
// of exiting: gotch reports them with log.Fatal, whose message goes through
// the standard logger's writer before os.Exit runs, so a writer that panics
// for exactly those calls turns the exit into an unwinding panic. Every
// other use of the standard logger writes to stderr as before. Call it in
// long-running servers, whose request paths recover per request.
func TrapFatal() {
	trapOnce.Do(func() { log.SetOutput(&fatalTrap{w: os.Stderr}) })
}

type fatalTrap struct{ w io.Writer }

func (t *fatalTrap) Write(p []byte) (int, error) {
	if gotchFatal() {
		panic(&Error{Msg: libtorchMessage(string(p))})
	}
	return t.w.Write(p)
}

// gotchFatal reports whether the log write in progress comes from
// log.Fatal* called by gotch.
func gotchFatal() bool {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	fatal := false
	for {
		f, more := frames.Next()
		switch f.Function {
		case "log.Fatal", "log.Fatalf", "log.Fatalln":
			fatal = true
		default:
			if fatal {
				return strings.HasPrefix(f.Function, "github.com/sugarme/gotch")
			}
		}
		if !more {
			return false
		}
	}
}

var logDate = regexp.MustCompile(`^[0-9/]+ [0-9:.]+ `)

// libtorchMessage keeps the first line of libtorch's message: gotch appends
// a Go stack trace, libtorch its C++ source location.
func libtorchMessage(s string) string {
	s = logDate.ReplaceAllString(s, "")
	s = strings.TrimPrefix(s, "Libtorch API Error: ")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// PanicError is a recovered panic that was not a libtorch error: a bug,
// reported with the stack where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error: %v", e.Value) }

// Recovered turns a value recovered from a panic into an error: an *Error
// as it is, anything else as a *PanicError, so that the caller can fail the
// request and keep serving. Call it from the deferred function that
// recovered, so the stack is the panic's.
func Recovered(v any) error {
	if e, ok := v.(*Error); ok {
		return e
	}
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Short shortens an error from gotch's error-returning calls, whose text
// carries libtorch's source location and a Go stack trace, to libtorch's
// message; it keeps ErrOutOfMemory detectable with errors.Is.
func Short(err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	s := err.Error()
	i := strings.Index(s, "Libtorch API Error: ")
	if i < 0 {
		return err
	}
	msg := libtorchMessage(s[i:])
	if prefix := strings.TrimSuffix(s[:i], ": "); prefix != "" {
		msg = prefix + ": " + msg
	}
	return &Error{Msg: msg}
}
