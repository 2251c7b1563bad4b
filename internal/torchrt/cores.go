package torchrt

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"unsafe"

	"golang.org/x/sys/unix"
)

// physicalCores counts the distinct physical cores (package, core id) among
// the CPUs this process may run on; without topology information (no /sys),
// every allowed CPU counts.
func physicalCores() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return runtime.NumCPU()
	}
	cores := map[string]bool{}
	cpus := 0
	for cpu := 0; cpu < 8*int(unsafe.Sizeof(set)); cpu++ {
		if !set.IsSet(cpu) {
			continue
		}
		cpus++
		dir := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/topology/", cpu)
		pkg, err1 := os.ReadFile(dir + "physical_package_id")
		core, err2 := os.ReadFile(dir + "core_id")
		if err1 != nil || err2 != nil {
			return set.Count()
		}
		cores[strings.TrimSpace(string(pkg))+":"+strings.TrimSpace(string(core))] = true
	}
	if len(cores) == 0 {
		return max(1, cpus)
	}
	return len(cores)
}
