package dist

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WorkerCPUsEnv carries a launched worker's CPUs ("0,1") from the launcher.
const WorkerCPUsEnv = "CLIPCAP_WORKER_CPUS"

// allowedCPUs lists the CPUs this process may run on, in order.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for c := 0; len(out) < set.Count(); c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// PinFromEnv confines this process to the CPUs its launcher gave it
// (WorkerCPUsEnv), if any: every thread it has now, and so every thread
// they start later (libtorch's OpenMP pool, Gloo's), which inherit the set;
// GOMAXPROCS follows.
// Call it before the first computation. It returns the CPUs, or nil.
func PinFromEnv() ([]int, error) {
	v := os.Getenv(WorkerCPUsEnv)
	if v == "" {
		return nil, nil
	}
	var set unix.CPUSet
	var cpus []int
	for _, f := range strings.Split(v, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 0 || c >= len(set)*64 {
			return nil, fmt.Errorf("%s=%q: %q is not a CPU number", WorkerCPUsEnv, v, f)
		}
		set.Set(c)
		cpus = append(cpus, c)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("pinning to CPUs %s: %w", v, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread that exited meanwhile is no error.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return nil, fmt.Errorf("pinning thread %d to CPUs %s: %w", tid, v, err)
		}
	}
	// Go's scheduler too: with more Ps than CPUs its idle Ms would spin on
	// the worker's own cores.
	runtime.GOMAXPROCS(len(cpus))
	return cpus, nil
}
