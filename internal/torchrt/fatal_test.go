package torchrt

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// mustFail runs fn, which makes a gotch Must* call fail, and returns what
// it panicked with. Without the trap, gotch's log.Fatal would end the test
// binary here.
func mustFail(t *testing.T, fn func()) (err error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			err = Recovered(v)
		}
	}()
	fn()
	t.Fatal("the Must call did not fail")
	return nil
}

func TestTrapFatalTurnsMustFailuresIntoErrors(t *testing.T) {
	TrapFatal()
	x := ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	err := mustFail(t, func() { x.MustView([]int64{7}, false) })
	var te *Error
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "shape '[7]' is invalid") || strings.Contains(te.Msg, "\n") {
		t.Fatalf("view failure: %#v", err)
	}
	if errors.Is(err, ErrOutOfMemory) {
		t.Errorf("a shape error classified as out of memory: %v", err)
	}
	// A CPU allocation that cannot succeed: a clean out-of-memory error.
	err = mustFail(t, func() { ts.MustEmpty([]int64{1 << 50}, gotch.Float, gotch.CPU) })
	if !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("huge allocation: %v, want ErrOutOfMemory", err)
	}
	// The same failure through the error-returning call, shortened.
	_, raw := ts.Empty([]int64{1 << 50}, gotch.Float, gotch.CPU)
	if s := Short(raw); !errors.Is(s, ErrOutOfMemory) || strings.Contains(s.Error(), "goroutine") {
		t.Errorf("Short(%.80q...) = %v", raw, s)
	}
	// Other log output is written, not trapped.
	var buf bytes.Buffer
	trap := log.Default().Writer().(*fatalTrap)
	old := trap.w
	trap.w = &buf
	defer func() { trap.w = old }()
	log.Print("hello")
	if !strings.Contains(buf.String(), "hello") {
		t.Errorf("log.Print wrote %q", buf.String())
	}
	if e := Recovered("boom"); !strings.Contains(e.Error(), "boom") || len(e.(*PanicError).Stack) == 0 {
		t.Errorf("Recovered(string) = %v", e)
	}
}

// Errors returned by gotch's error-returning calls carry a Go stack trace;
// Short keeps libtorch's first line and the out-of-memory class.
func TestShort(t *testing.T) {
	raw := fmt.Errorf("encoding images: %w", fmt.Errorf("Libtorch API Error: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)\nException raised from malloc\n\ngoroutine 1 [running]:\nmain.main()\n"))
	s := Short(raw)
	if !errors.Is(s, ErrOutOfMemory) || s.Error() != "libtorch: encoding images: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)" {
		t.Errorf("Short = %q", s)
	}
	if plain := errors.New("no such file"); Short(plain) != plain || Short(nil) != nil {
		t.Error("Short changed an error that is not libtorch's")
	}
}
