// Package torchrt tunes the native runtime under libtorch (OpenBLAS kernel,
// OpenMP waiting) and reports what is in use.
//
// Both OpenBLAS and libgomp read their settings from the environment in
// their library constructors, before any Go code runs. So when the
// environment has not chosen, Tune picks the OpenBLAS kernel that fits this
// CPU (OpenBLAS 0.3.21 mis-detects recent Xeons and falls back to generic
// kernels 4x slower) and OMP_WAIT_POLICY=PASSIVE (libtorch's OpenMP pool and
// OpenBLAS's threads otherwise spin against each other on few cores), then
// re-executes the process once with them. Only commands that compute call
// Tune: a re-exec costs a second load of libtorch, which commands such as
// tokenize or score would pay for nothing. Settings the user made are never
// overridden; CLIPCAP_NO_REEXEC=1 disables the re-exec.
package torchrt

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

static const char *blas_corename(void) {
	char *(*f)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
	return f ? f() : NULL;
}
static const char *blas_config(void) {
	char *(*f)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
	return f ? f() : NULL;
}
// at::get_num_threads / at::set_num_threads, looked up so that this package
// needs no C++ toolchain flags (the names are the Itanium C++ ABI's).
static int torch_threads(void) {
	int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "_ZN2at15get_num_threadsEv");
	return f ? f() : -1;
}
static int torch_set_threads(int n) {
	void (*f)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "_ZN2at15set_num_threadsEi");
	if (!f) return -1;
	f(n);
	return 0;
}
// omp_team is the calling thread's OpenMP team size (what oneDNN uses).
static int omp_team(void) {
	int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
	return f ? f() : -1;
}
static int blas_threads(void) {
	int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
	return f ? f() : -1;
}
*/
import "C"

import (
	"os"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/cpu"
)

const reexecMarker = "CLIPCAP_RUNTIME_SET"

// Choice records how the runtime settings were decided, for doctor.
type Choice struct {
	CoreType       string // OPENBLAS_CORETYPE in effect ("" = OpenBLAS auto-detection)
	CoreTypeSource string // "environment", "clipcap (CPU features)", or "auto-detected by OpenBLAS"
	WaitPolicy     string // OMP_WAIT_POLICY in effect
	Threads        int    // libtorch's intra-op threads (0: libtorch not loaded)
	ThreadsSource  string // "environment", "libtorch's default" or "clipcap (physical cores)" (ComputeOnAllCores)
}

var choice Choice

func init() {
	choice = decide(false)
}

// intraOpThreads reports libtorch's thread count and who chose it.
func intraOpThreads() (int, string) {
	switch {
	case C.torch_threads() < 0:
		return 0, ""
	case os.Getenv("OMP_NUM_THREADS") != "" || os.Getenv("MKL_NUM_THREADS") != "":
		return int(C.torch_threads()), "environment"
	}
	return int(C.torch_threads()), "libtorch's default"
}

// ComputeOnAllCores gives libtorch one intra-op thread per physical core
// this process may run on, unless the environment chose; training calls
// it. libtorch's own default counts cores with cpuinfo, which some virtual
// machines defeat: on this 2-core VM it counted 1, so every elementwise op
// and every oneDNN product (all bf16 matmuls) ran on one thread while
// OpenBLAS used both cores (bf16 training: 2x faster with both). Inference
// keeps the default: its many small ops pay a thread wake-up each under
// OMP_WAIT_POLICY=PASSIVE, and measured slower with more threads (live
// int8: 6.2 against 6.6 captions/s).
func ComputeOnAllCores() {
	if _, src := intraOpThreads(); src != "libtorch's default" {
		return
	}
	if n := physicalCores(); n > 0 && C.torch_set_threads(C.int(n)) == 0 {
		choice.Threads, choice.ThreadsSource = int(C.torch_threads()), "clipcap (physical cores)"
	}
}

// Tune re-executes the process with the runtime settings that fit this CPU
// when the environment has not chosen them and they differ from what is in
// effect; it returns only when no re-exec was needed or possible. Call it
// first thing in commands that run libtorch compute.
func Tune() {
	choice = decide(true)
}

func decide(reexec bool) Choice {
	c := Choice{CoreType: os.Getenv("OPENBLAS_CORETYPE"), WaitPolicy: os.Getenv("OMP_WAIT_POLICY"),
		Threads: choice.Threads, ThreadsSource: choice.ThreadsSource}
	set := os.Getenv(reexecMarker)
	switch {
	case c.CoreType != "" && strings.Contains(set, "coretype"):
		c.CoreTypeSource = "clipcap (CPU features)"
	case c.CoreType != "":
		c.CoreTypeSource = "environment"
	default:
		c.CoreTypeSource = "auto-detected by OpenBLAS"
	}
	if !reexec || set != "" || os.Getenv("CLIPCAP_NO_REEXEC") != "" || C.blas_corename() == nil {
		return c // already re-executed, disabled, or no OpenBLAS in this process
	}
	var changed []string
	if c.CoreType == "" {
		if want := CoreTypeForCPU(); want != "" && !strings.EqualFold(want, BLASCore()) {
			os.Setenv("OPENBLAS_CORETYPE", want)
			changed = append(changed, "coretype")
		}
	}
	if c.WaitPolicy == "" {
		os.Setenv("OMP_WAIT_POLICY", "PASSIVE")
		changed = append(changed, "wait")
	}
	if len(changed) == 0 {
		return c
	}
	os.Setenv(reexecMarker, strings.Join(changed, ","))
	exe, err := os.Executable()
	if err == nil {
		err = syscall.Exec(exe, os.Args, os.Environ())
	}
	// Exec failed: carry on with the settings the process started with.
	os.Unsetenv(reexecMarker)
	return c
}

// CoreTypeForCPU names the OpenBLAS kernel family for this CPU's features, as
// checked by x/sys/cpu (which also checks that the OS saves the registers), or
// "" to leave the choice to OpenBLAS.
func CoreTypeForCPU() string {
	x := cpu.X86
	switch {
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512CD && x.HasAVX512BF16:
		return "Cooperlake"
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512CD:
		return "SkylakeX"
	case x.HasAVX2 && x.HasFMA:
		return "Haswell"
	}
	return ""
}

// Current returns how the runtime settings were decided.
func Current() Choice {
	// Asked for here, not at init: libtorch's get_num_threads also sizes the
	// calling thread's OpenMP team, which a process that never asks must
	// leave as it was.
	if choice.ThreadsSource == "" {
		choice.Threads, choice.ThreadsSource = intraOpThreads()
	}
	return choice
}

// BLASCore is the kernel OpenBLAS runs, or "" when OpenBLAS is not loaded.
func BLASCore() string {
	p := C.blas_corename()
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// BLASConfig is OpenBLAS's build description, or "" when it is not loaded.
func BLASConfig() string {
	p := C.blas_config()
	if p == nil {
		return ""
	}
	return strings.TrimSpace(C.GoString(p))
}

// IntraOpThreads is the number of threads libtorch computes an op with, or
// the number of usable CPUs when libtorch is not loaded.
func IntraOpThreads() int {
	if n := int(C.torch_threads()); n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// ompTeam is the calling OS thread's OpenMP team size: what oneDNN, which
// libtorch runs bf16 products on, computes with.
func ompTeam() int { return int(C.omp_team()) }

// BLASThreads is OpenBLAS's thread count, or -1 when it is not loaded.
func BLASThreads() int { return int(C.blas_threads()) }
