package torchrt_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func rssBytes(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestInPlaceOpsDoNotLeak guards the gotch preparation's fix: unpatched,
// every in-place op kept its tensor's previous C handle (and so the whole
// storage) alive, 30 × 40 MB here.
func TestInPlaceOpsDoNotLeak(t *testing.T) {
	b := ts.MustOnes([]int64{10 << 20}, gotch.Float, gotch.CPU)
	defer b.MustDrop()
	before := rssBytes(t)
	for i := 0; i < 30; i++ {
		a := ts.MustZeros([]int64{10 << 20}, gotch.Float, gotch.CPU)
		a.MustAdd_(b)
		a.MustMulScalar_(ts.FloatScalar(2))
		if i == 0 {
			if v := a.MustFloat64Value([]int64{7}); v != 2 {
				t.Fatalf("in-place result %v, want 2", v)
			}
		}
		a.MustDrop()
	}
	if grown := rssBytes(t) - before; grown > 200<<20 {
		t.Fatalf("RSS grew by %d MB over 30 in-place ops on dropped 40 MB tensors", grown>>20)
	}
}
