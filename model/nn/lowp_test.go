package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// randomLowP converts a random float32 weight, [k, n] or transposed [n, k],
// to p; the caller frees w.
func randomLowP(t *testing.T, k, n int64, p Precision, transposed bool) (w *ts.Tensor, low *LowP) {
	t.Helper()
	shape := []int64{k, n}
	if transposed {
		shape = []int64{n, k}
	}
	w = ts.MustRandn(shape, gotch.Float, gotch.CPU)
	low, err := NewLowP(w, transposed, p)
	if err != nil {
		t.Fatal(err)
	}
	return w, low
}

func maxAbs(t *ts.Tensor) float64 {
	m := t.MustAbs(false).MustMax(true)
	defer m.MustDrop()
	return m.Float64Values()[0]
}

// The bf16 and int8 kernels, at every instruction-set level this CPU has,
// compute x·W + b with the weights they hold (their dequantized copy) to
// float32 rounding, in both layouts, for row counts around the 8-row
// blocks and sizes that leave remainders in every loop.
func TestLowPKernels(t *testing.T) {
	const k, n = 131, 301 // 19 blocks of 16: a remainder after blocks of 4
	defer lowPLevel(3)
	b := ts.MustRandn([]int64{n}, gotch.Float, gotch.CPU)
	defer b.MustDrop()
	for level := lowPLevel(3); level >= 0; level-- {
		if got := lowPLevel(level); got != level {
			t.Fatalf("level %d: kernels run at %d", level, got)
		}
		for _, p := range []Precision{BF16, Int8} {
			for _, transposed := range []bool{false, true} {
				w, low := randomLowP(t, k, n, p, transposed)
				deq := low.Dequantized()
				wkn := deq
				if transposed {
					wkn = deq.MustT(false)
				}
				for _, r := range []int64{1, 3, 8, 11} {
					name := fmt.Sprintf("level %d %s transposed=%v rows %d", level, p, transposed, r)
					x := ts.MustRandn([]int64{r, 1, k}, gotch.Float, gotch.CPU)
					for _, bias := range []*ts.Tensor{nil, b} {
						got := low.Forward(x, bias)
						want := x.MustMatmul(wkn, false)
						if bias != nil {
							want = want.MustAdd(bias, true)
						}
						if s := got.MustSize(); len(s) != 3 || s[0] != r || s[1] != 1 || s[2] != n {
							t.Fatalf("%s: output shape %v", name, s)
						}
						d := got.MustSub(want, false)
						if e := maxAbs(d); e > 1e-4*maxAbs(want) {
							t.Errorf("%s bias=%v: max |diff| %g from x·dequantized(W)", name, bias != nil, e)
						}
						d.MustDrop()
						got.MustDrop()
						want.MustDrop()
					}
					x.MustDrop()
				}
				if transposed {
					wkn.MustDrop()
				}
				deq.MustDrop()
				w.MustDrop()
			}
		}
	}
}

// Products big enough to be shared out between the pool's threads give
// the same results as on one thread, also when several goroutines multiply
// at once (one of them gets the pool, the others compute alone).
func TestLowPParallel(t *testing.T) {
	const k, n, r = 768, 2000, 3
	w := ts.MustRandn([]int64{n, k}, gotch.Float, gotch.CPU)
	defer w.MustDrop()
	for _, p := range []Precision{BF16, Int8} {
		low, err := NewLowP(w, true, p)
		if err != nil {
			t.Fatal(err)
		}
		x := ts.MustRandn([]int64{r, k}, gotch.Float, gotch.CPU)
		deq := low.Dequantized()
		want := x.MustMatmul(deq.MustT(true), false)
		done := make(chan error, 4)
		for g := 0; g < 4; g++ {
			go func() {
				for i := 0; i < 20; i++ {
					got := low.Forward(x, nil)
					d := got.MustSub(want, true)
					e := maxAbs(d)
					d.MustDrop()
					if e > 1e-4*maxAbs(want) {
						done <- fmt.Errorf("%s: goroutine %d, product %d differs by %g", p, g, i, e)
						return
					}
				}
				done <- nil
			}()
		}
		for g := 0; g < 4; g++ {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		x.MustDrop()
		want.MustDrop()
	}
}

// Quantization error: int8 is within half a step of its channel's scale,
// bf16 within half a unit in the 8th bit.
func TestLowPQuantization(t *testing.T) {
	w := ts.MustRandn([]int64{64, 96}, gotch.Float, gotch.CPU)
	defer w.MustDrop()
	vals := w.Float64Values()
	for _, p := range []Precision{BF16, Int8} {
		low, err := NewLowP(w, false, p)
		if err != nil {
			t.Fatal(err)
		}
		deq := low.Dequantized()
		got := deq.Float64Values()
		deq.MustDrop()
		for i, v := range vals {
			bound := math.Abs(v) * math.Pow(2, -8)
			if p == Int8 {
				bound = float64(low.Scale[i%96])/2 + 1e-7
			}
			if e := math.Abs(got[i] - v); e > bound {
				t.Fatalf("%s weight %d: %g -> %g, error above %g", p, i, v, got[i], bound)
			}
		}
	}
	for f, want := range map[float32]uint16{1: 0x3f80, 1 + 1.0/256: 0x3f80, 1 + 3.0/256: 0x3f82, -2: 0xc000} {
		if got := toBF16(f); got != want {
			t.Errorf("toBF16(%g) = %#x, want %#x (nearest, ties to even)", f, got, want)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Error("ParsePrecision(fp16): no error")
	}
}
