// Package dist is data-parallel training's link to libtorch's distributed
// engine (c10d): rendezvous through a TCPStore, a Gloo (CPU) or NCCL (CUDA)
// process group, gradient all-reduce in persistent buckets, weight broadcast and barrier.
// The collectives are libtorch's own; this package only packs tensors into
// buckets and turns C++ exceptions into errors that name the lost rank.
package dist

/*
#cgo CXXFLAGS: -std=c++17 -O2 -w -DUSE_C10D_GLOO
#cgo LDFLAGS: -ltorch_cpu -lc10
#include <stdlib.h>
#include "c10d.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/sugarme/gotch/ts"
)

// BucketBytes is the all-reduce bucket size, PyTorch DDP's default (25 MiB):
// big enough to amortise each collective's latency, small enough that
// packing does not double peak memory.
const BucketBytes = 25 << 20

// DefaultTimeout bounds rendezvous, store waits and every collective, as
// torch.distributed's default for Gloo.
const DefaultTimeout = 10 * time.Minute

// Group is this process's membership in a data-parallel job.
type Group struct {
	Rank, World int
	Backend     string
	Timeout     time.Duration
	BucketBytes int64 // all-reduce/broadcast bucket cap (BucketBytes by default)
	// StartedInBackward is how many gradient buckets the last ReduceGrads
	// found already being reduced: started by backward after ExpectBackward.
	StartedInBackward int
	addr              string
	c                 *C.cc_group
}

func cerr(e *C.char) error {
	msg := C.GoString(e)
	C.free(unsafe.Pointer(e))
	return errors.New(strings.TrimSpace(msg))
}

// Init joins the job described by env: rank 0 hosts the TCPStore at
// env.Addr:env.Port, the others connect to it (waiting up to timeout for it
// to come up). The process group is made later by Start, once the ranks
// have checked that they agree (see Agree).
func Init(env Env, backend string, timeout time.Duration) (*Group, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("dist_timeout: must be positive, got %v", timeout)
	}
	g := &Group{Rank: env.Rank, World: env.World, Backend: backend, Timeout: timeout, BucketBytes: BucketBytes,
		addr: net.JoinHostPort(env.Addr, fmt.Sprint(env.Port))}
	cb, ca := C.CString(backend), C.CString(env.Addr)
	defer C.free(unsafe.Pointer(cb))
	defer C.free(unsafe.Pointer(ca))
	var e *C.char
	if C.cc_init(cb, ca, C.int(env.Port), C.int(env.Rank), C.int(env.World), C.int64_t(timeout.Milliseconds()), &g.c, &e) != 0 {
		err := cerr(e)
		if env.Rank == 0 {
			return nil, fmt.Errorf("rank 0: could not host the rendezvous store on port %d: %v", env.Port, err)
		}
		return nil, fmt.Errorf("rank %d: could not reach the rendezvous store at %s within %v (is MASTER_ADDR/MASTER_PORT right and rank 0 running?): %v",
			env.Rank, g.addr, timeout, err)
	}
	return g, nil
}

// Start creates the process group. glooHost, when not empty, is the address
// Gloo binds to (loopback for single-node jobs); GLOO_SOCKET_IFNAME wins.
func (g *Group) Start(glooHost string) error {
	ch := C.CString(glooHost)
	defer C.free(unsafe.Pointer(ch))
	var e *C.char
	if C.cc_make_group(g.c, ch, &e) != 0 {
		return fmt.Errorf("rank %d: creating the %s process group: %w", g.Rank, g.Backend, g.lost(cerr(e)))
	}
	return nil
}

// Close leaves the job; rank 0 stops serving the store.
func (g *Group) Close() {
	if g != nil && g.c != nil {
		C.cc_shutdown(g.c)
		g.c = nil
	}
}

func handles(tensors []*ts.Tensor) (unsafe.Pointer, func()) {
	// The handle array lives in C memory: cgo forbids passing Go memory that
	// holds Go pointers, and the handles are C pointers anyway.
	arr := C.malloc(C.size_t(len(tensors)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	s := unsafe.Slice((*unsafe.Pointer)(arr), len(tensors))
	for i, t := range tensors {
		s[i] = t.Ctensor()
	}
	return arr, func() { C.free(arr) }
}

// ReduceGrads sums over the ranks the gradients of params (those that have
// one) and, in the same round of collectives, the numbers in sums, in place.
// The gradients stay in flat buckets between steps (each .grad a view of
// its bucket, as DDP's gradient_as_bucket_view), so backward accumulates
// straight into what is reduced; replacing a .grad only costs a re-pack.
func (g *Group) ReduceGrads(params []*ts.Tensor, sums []float64) error {
	arr, free := handles(params)
	defer free()
	var sp *C.double
	if len(sums) > 0 {
		// C memory: the collective runs on Gloo's threads.
		buf := C.malloc(C.size_t(len(sums)) * C.sizeof_double)
		defer C.free(buf)
		sp = (*C.double)(buf)
		copy(unsafe.Slice((*float64)(buf), len(sums)), sums)
		defer func() { copy(sums, unsafe.Slice((*float64)(buf), len(sums))) }()
	}
	var e *C.char
	var early C.int
	if C.cc_reduce_grads(g.c, (*unsafe.Pointer)(arr), C.int(len(params)), C.int64_t(g.BucketBytes), sp, C.int(len(sums)), &early, &e) != 0 {
		return fmt.Errorf("rank %d: all-reduce: %w", g.Rank, g.lost(cerr(e)))
	}
	runtime.KeepAlive(params) // their finalizers free the C tensors
	g.StartedInBackward = int(early)
	return nil
}

// ExpectBackward arms the gradient hooks for the coming backward, the
// step's last: each bucket's all-reduce then starts inside backward as soon
// as its gradients are complete, overlapping the rest of backward, and
// ReduceGrads only finishes the job. Micro-batches that only accumulate
// (gradient accumulation, DDP's no_sync) skip it. Before the first
// ReduceGrads nothing is bound yet, and it does nothing.
func (g *Group) ExpectBackward() error {
	var e *C.char
	if C.cc_expect_backward(g.c, &e) != 0 {
		return fmt.Errorf("rank %d: all-reduce: %w", g.Rank, g.lost(cerr(e)))
	}
	return nil
}

// AllReduceSum sums one tensor over the ranks, in place.
func (g *Group) AllReduceSum(t *ts.Tensor) error {
	var e *C.char
	if C.cc_allreduce_sum(g.c, t.Ctensor(), &e) != 0 {
		return fmt.Errorf("rank %d: all-reduce: %w", g.Rank, g.lost(cerr(e)))
	}
	runtime.KeepAlive(t)
	return nil
}

// Broadcast copies root's tensors into every rank's.
func (g *Group) Broadcast(tensors []*ts.Tensor, root int) error {
	if len(tensors) == 0 {
		return nil
	}
	arr, free := handles(tensors)
	defer free()
	var e *C.char
	if C.cc_broadcast(g.c, (*unsafe.Pointer)(arr), C.int(len(tensors)), C.int(root), C.int64_t(g.BucketBytes), &e) != 0 {
		return fmt.Errorf("rank %d: broadcast: %w", g.Rank, g.lost(cerr(e)))
	}
	runtime.KeepAlive(tensors) // their finalizers free the C tensors
	return nil
}

// Barrier returns once every rank has called it.
func (g *Group) Barrier() error {
	var e *C.char
	if C.cc_barrier(g.c, &e) != 0 {
		return fmt.Errorf("rank %d: barrier: %w", g.Rank, g.lost(cerr(e)))
	}
	return nil
}
