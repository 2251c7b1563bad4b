package torchrt

/*
// Defined in gotch's libtch: sets autograd's mode for this thread and
// returns the previous one. gotch's Go wrapper reads the C int through an
// 8-byte Go int, so its "previous state" is garbage; we call it directly.
int at_grad_set_enabled(int b);
*/
import "C"

import (
	"runtime"
)

// setGrad sets this thread's autograd mode and returns the previous one.
func setGrad(on bool) bool {
	v := C.int(0)
	if on {
		v = 1
	}
	return C.at_grad_set_enabled(v) == 1
}

// NoGrad runs fn with autograd off, like torch.no_grad(). libtorch's grad
// mode is per OS thread, and a goroutine may move to another thread between
// two cgo calls, so the goroutine is pinned to its thread for the duration:
// gotch's own ts.NoGrad can switch the mode off on one thread and back on
// on another, leaving the first without autograd (a later backward then
// fails on whatever runs there). The previous mode is restored, so NoGrad
// nests.
func NoGrad(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := setGrad(false)
	defer setGrad(prev)
	fn()
}
