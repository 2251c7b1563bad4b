package torchrt

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// After ComputeOnAllCores libtorch computes on one thread per physical core
// (or what the environment asked for), on every OS thread: a parallel op run
// on a fresh thread (libtorch sizes each thread's OpenMP team lazily, from
// the global count) leaves that thread's team at the same size.
func TestIntraOpThreads(t *testing.T) {
	ComputeOnAllCores()
	want := physicalCores()
	if env := os.Getenv("OMP_NUM_THREADS"); env != "" {
		want, _ = strconv.Atoi(env)
		if choice.ThreadsSource != "environment" {
			t.Errorf("source %q with OMP_NUM_THREADS=%s set", choice.ThreadsSource, env)
		}
	} else if choice.ThreadsSource != "clipcap (physical cores)" {
		t.Errorf("source %q, want clipcap's physical-core count", choice.ThreadsSource)
	}
	if want < 1 || want > runtime.NumCPU() {
		t.Fatalf("physical cores %d with %d CPUs", want, runtime.NumCPU())
	}
	if got := IntraOpThreads(); got != want || Current().Threads != want {
		t.Fatalf("libtorch threads %d (recorded %d), want %d", got, Current().Threads, want)
	}
	done := make(chan int)
	go func() {
		runtime.LockOSThread() // a thread libtorch has not computed on yet
		defer runtime.UnlockOSThread()
		x := ts.MustOnes([]int64{1 << 20}, gotch.Float, gotch.CPU)
		y := x.MustTotype(gotch.BFloat16, true) // a parallel_for
		y.MustDrop()
		done <- ompTeam()
	}()
	if got := <-done; got != want {
		t.Errorf("after a parallel op on a fresh thread, its OpenMP team is %d threads, want %d", got, want)
	}
}
