// Package doctor gathers what a user pastes into a bug report: the libtorch
// build, the BLAS kernel in use and how it was chosen, devices, where gotch
// and the tokenizer files are, and a quick numerical and speed check.
package doctor

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/internal/torchrt"
)

// Build facts, set by scripts/setup.sh through -ldflags -X when it builds
// bin/clipcap; otherwise read from third_party/gotch.env.
var (
	BuildLibtorch string
	BuildGotch    string
)

// Report writes the report to w. It returns an error only when a check fails.
func Report(w io.Writer) error {
	env := buildEnv()
	fmt.Fprintf(w, "clipcap doctor\n")
	fmt.Fprintf(w, "  go:           %s %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	fmt.Fprintf(w, "  cpu:          %s\n", cpuModel())
	fmt.Fprintf(w, "  libtorch:     %s (%s), C++11 ABI %s\n", orUnknown(env["version"]), orUnknown(env["libtorch"]), orUnknown(env["cxx11_abi"]))
	fmt.Fprintf(w, "  gotch:        %s\n", orUnknown(env["gotch"]))
	core := torchrt.BLASCore()
	if core == "" {
		fmt.Fprintf(w, "  blas:         OpenBLAS not loaded (libtorch uses another BLAS; install libopenblas0-pthread for speed)\n")
	} else {
		ch := torchrt.Current()
		fmt.Fprintf(w, "  blas:         OpenBLAS, kernel %s (%s), %d threads\n", core, ch.CoreTypeSource, torchrt.BLASThreads())
		if want := torchrt.CoreTypeForCPU(); want != "" && !strings.EqualFold(want, core) && ch.CoreTypeSource != "environment" {
			fmt.Fprintf(w, "                warning: this CPU fits the %s kernel\n", want)
		}
		fmt.Fprintf(w, "  blas build:   %s\n", torchrt.BLASConfig())
	}
	fmt.Fprintf(w, "  omp wait:     %s\n", orUnknown(ch().WaitPolicy))
	if c := ch(); c.Threads > 0 {
		fmt.Fprintf(w, "  threads:      %d libtorch intra-op (%s; training takes one per physical core)\n", c.Threads, c.ThreadsSource)
	}
	if gotch.CUDA.IsAvailable() {
		fmt.Fprintf(w, "  devices:      cpu, cuda x%d (cudnn %v)\n", gotch.CUDA.DeviceCount(), gotch.CUDA.CudnnIsAvailable())
	} else {
		fmt.Fprintf(w, "  devices:      cpu (no CUDA in this libtorch or no GPU)\n")
	}
	tokDir := tokenizer.DefaultDir()
	if _, err := tokenizer.Load(tokDir); err != nil {
		fmt.Fprintf(w, "  tokenizer:    missing in %s (run scripts/setup.sh or scripts/fetch-tokenizer.sh)\n", tokDir)
	} else {
		fmt.Fprintf(w, "  tokenizer:    GPT-2 BPE in %s\n", tokDir)
	}
	maxErr, gflops := matmulCheck()
	fmt.Fprintf(w, "  matmul:       1024x1024 float32 %.0f GFLOP/s, max error vs float64 %.2g\n", gflops, maxErr)
	if maxErr > 1e-3 {
		return fmt.Errorf("matmul result is wrong (max error %g): the BLAS kernel %q is broken on this CPU; set OPENBLAS_CORETYPE to another kernel", maxErr, core)
	}
	return nil
}

func ch() torchrt.Choice { return torchrt.Current() }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// buildEnv reads the facts setup.sh recorded.
func buildEnv() map[string]string {
	out := map[string]string{}
	if BuildLibtorch != "" {
		for _, kv := range strings.Split(BuildLibtorch, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = v
			}
		}
		out["gotch"] = BuildGotch
		return out
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", "third_party", "gotch.env"))
	}
	candidates = append(candidates, filepath.Join("third_party", "gotch.env"))
	for _, p := range candidates {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				out[k] = v
			}
		}
		f.Close()
		break
	}
	return out
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

// matmulCheck multiplies two random 1024² matrices through libtorch, checks
// a few entries against float64 and measures the speed.
func matmulCheck() (maxErr, gflops float64) {
	const n = 1024
	a := ts.MustRandn([]int64{n, n}, gotch.Float, gotch.CPU)
	b := ts.MustRandn([]int64{n, n}, gotch.Float, gotch.CPU)
	defer a.MustDrop()
	defer b.MustDrop()
	c := a.MustMatmul(b, false)
	av, bv, cv := a.Float64Values(), b.Float64Values(), c.Float64Values()
	c.MustDrop()
	for _, ij := range [][2]int{{0, 0}, {17, 901}, {512, 3}, {1023, 1023}} {
		var want float64
		for k := 0; k < n; k++ {
			want += av[ij[0]*n+k] * bv[k*n+ij[1]]
		}
		maxErr = math.Max(maxErr, math.Abs(cv[ij[0]*n+ij[1]]-want))
	}
	const reps = 8
	start := time.Now()
	for i := 0; i < reps; i++ {
		c := a.MustMatmul(b, false)
		c.MustDrop()
	}
	sec := time.Since(start).Seconds()
	return maxErr, 2 * n * n * n * reps / sec / 1e9
}
