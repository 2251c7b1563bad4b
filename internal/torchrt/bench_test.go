package torchrt_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// pyMatmul times the same matmul through libtorch from Python (Debian's
// python3-torch), in this process's environment, so both use the same BLAS
// kernel and thread settings.
const pyMatmul = `
import sys, time, torch
n = int(sys.argv[1]); reps = int(sys.argv[2])
a = torch.randn(n, n); b = torch.randn(n, n)
for _ in range(3): a @ b
best = 0
for _ in range(5):
    t = time.perf_counter()
    for _ in range(reps): a @ b
    best = max(best, 2 * n**3 * reps / (time.perf_counter() - t) / 1e9)
print(best)
`

func gotchGFLOPS(n, reps int) float64 {
	a := ts.MustRandn([]int64{int64(n), int64(n)}, gotch.Float, gotch.CPU)
	b := ts.MustRandn([]int64{int64(n), int64(n)}, gotch.Float, gotch.CPU)
	defer a.MustDrop()
	defer b.MustDrop()
	for i := 0; i < 3; i++ {
		a.MustMatmul(b, false).MustDrop()
	}
	best := 0.0
	for round := 0; round < 5; round++ {
		start := time.Now()
		for i := 0; i < reps; i++ {
			a.MustMatmul(b, false).MustDrop()
		}
		if g := 2 * float64(n*n*n*reps) / time.Since(start).Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}

// BenchmarkMatmul1024 reports float32 GFLOP/s of a 1024² matmul through
// gotch and, when Debian's python3-torch is installed, the same matmul
// through PyTorch measured in the same run, and their ratio.
func BenchmarkMatmul1024(b *testing.B) {
	const n, reps = 1024, 10
	var ours float64
	for i := 0; i < b.N; i++ {
		ours = gotchGFLOPS(n, reps)
	}
	b.ReportMetric(ours, "GFLOP/s")
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		return
	}
	out, err := exec.Command("/usr/bin/python3", "-c", pyMatmul, strconv.Itoa(n), strconv.Itoa(reps)).Output()
	if err != nil {
		b.Logf("PyTorch baseline not run (python3-torch missing?): %v", err)
		return
	}
	py, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || py <= 0 {
		b.Logf("PyTorch baseline printed %q", out)
		return
	}
	b.ReportMetric(py, "pytorch-GFLOP/s")
	b.ReportMetric(ours/py, "ratio")
}
