package nn

import (
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

// A LowP written as file tensors (output-major, from either storage
// layout) and read back holds the same weights, computes the same
// products, and dequantizes into either float32 layout exactly as
// Dequantized does; building it converts nothing.
func TestLowPTensorsRoundTrip(t *testing.T) {
	const k, n = 48, 35
	x := ts.MustRandn([]int64{3, k}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	for _, p := range []Precision{BF16, Int8} {
		for _, transposed := range []bool{false, true} {
			w, low := randomLowP(t, k, n, p, transposed)
			wt, scale := low.Tensors()
			before := LowPConversions()
			back, err := LowPFromTensors(k, n, wt, scale)
			if err != nil {
				t.Fatalf("%s transposed=%v: %v", p, transposed, err)
			}
			if LowPConversions() != before {
				t.Errorf("LowPFromTensors converted")
			}
			// Loaded weights use the kernels converted ones would (the
			// packed dot-product layout where the CPU has it).
			if transposed && back.packed != low.packed {
				t.Errorf("%s: loaded LowP packed=%v, converted packed=%v", p, back.packed, low.packed)
			}
			a, b := low.Forward(x, nil), back.Forward(x, nil)
			diff := a.MustSub(b, false)
			// Two kernels (the unpacked [K, N] one and the packed one, which
			// rounds activations to ~16 bits) each within 1e-4 of
			// x·dequantized(W), TestLowPKernels' bound.
			if d := maxAbs(diff); d > 2e-4*maxAbs(a) {
				t.Errorf("%s transposed=%v: products differ by %g", p, transposed, d)
			}
			for _, z := range []*ts.Tensor{a, b, diff} {
				z.MustDrop()
			}
			deq := low.Dequantized() // stored layout
			if transposed {
				deq = deq.MustT(true)
			}
			kn := deq.MustContiguous(true) // [K, N]
			for _, into := range []bool{false, true} {
				dst := ts.MustZeros([]int64{k, n}, gotch.Float, gotch.CPU)
				want := kn
				if into {
					dst = ts.MustZeros([]int64{n, k}, gotch.Float, gotch.CPU)
					want = kn.MustT(false).MustContiguous(true)
				}
				if err := back.DequantizeInto(dst, into); err != nil {
					t.Fatal(err)
				}
				if d := maxAbs(dst.MustSub(want, false)); d != 0 {
					t.Errorf("%s transposed=%v into [N,K]=%v: dequantized differs by %g", p, transposed, into, d)
				}
				dst.MustDrop()
			}
			kn.MustDrop()
			w.MustDrop()
		}
	}
}

// LowPFromRaw and LowPFromTensors refuse what does not fit, saying what.
func TestLowPFromRawErrors(t *testing.T) {
	q := make([]int8, 6)
	h := make([]uint16, 6)
	s := []float32{1, 1, 1}
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"short q":        {err2(LowPFromRaw(Int8, 2, 3, true, q[:5], nil, s)), "5 values for 2x3"},
		"short scale":    {err2(LowPFromRaw(Int8, 2, 3, true, q, nil, s[:2])), "2 scales for 3"},
		"nan scale":      {err2(LowPFromRaw(Int8, 2, 3, true, q, nil, []float32{1, float32(nan()), 1})), "scale 1 is NaN"},
		"both":           {err2(LowPFromRaw(Int8, 2, 3, true, q, h, s)), "bf16 values given too"},
		"bf16 scale":     {err2(LowPFromRaw(BF16, 2, 3, true, nil, h, s)), "scales given too"},
		"short h":        {err2(LowPFromRaw(BF16, 2, 3, true, nil, h[:1], nil)), "1 values"},
		"fp32":           {err2(LowPFromRaw(FP32, 2, 3, true, q, nil, s)), "not bf16 or int8"},
		"zero shape":     {err2(LowPFromRaw(Int8, 0, 3, true, nil, nil, nil)), "bad shape"},
		"layout":         {err2(LowPFromTensors(2, 3, tensorfile.RawTensor{Dtype: tensorfile.I8, Shape: []int64{2, 3}, Data: make([]byte, 6)}, nil)), "output-major"},
		"no scale":       {err2(LowPFromTensors(2, 3, tensorfile.RawTensor{Dtype: tensorfile.I8, Shape: []int64{3, 2}, Data: make([]byte, 6)}, nil)), "without their scale"},
		"f64 scale":      {err2(LowPFromTensors(2, 3, tensorfile.RawTensor{Dtype: tensorfile.I8, Shape: []int64{3, 2}, Data: make([]byte, 6)}, &tensorfile.RawTensor{Dtype: tensorfile.F64, Shape: []int64{3}, Data: make([]byte, 24)})), "want F32[3]"},
		"f32 weights":    {err2(LowPFromTensors(2, 3, tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: []int64{3, 2}, Data: make([]byte, 24)}, nil)), "not a low-precision weight"},
		"truncated data": {err2(LowPFromTensors(2, 3, tensorfile.RawTensor{Dtype: tensorfile.BF16, Shape: []int64{3, 2}, Data: make([]byte, 11)}, nil)), "11 bytes"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, tc.err, tc.want)
		}
	}
}

func err2(_ *LowP, err error) error { return err }

func nan() float64 { return math.NaN() }
