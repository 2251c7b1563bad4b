package nn

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
)

// A LowP's stored form: int8 values (with N per-output-channel scales, the
// weight being q·scale[n]) or bf16 bits, K·N of them in the storage layout
// ([N, K] when Transposed, else [K, N]). LowPFromRaw builds a LowP from
// that form without quantizing anything, which is how quantized model files
// load; Tensors and DequantizeInto read it back, whatever layout the
// kernels keep the weights in (lowp_packed.go's, on CPUs with VNNI or
// AVX512_BF16).

// nativeLE: file data (little-endian) can be copied as it is.
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// conversions counts NewLowP calls: tests use it to prove that a model
// stored quantized was not quantized again at load.
var conversions atomic.Int64

// LowPConversions is the number of fp32→bf16/int8 conversions (NewLowP
// calls) so far in this process.
func LowPConversions() int64 { return conversions.Load() }

// LowPFromRaw wraps already quantized weights: q (int8, with scale) or h
// (bf16, scale nil), K·N elements in the storage layout. The slices are
// kept, or rearranged into the packed kernels' layout (transposed only,
// as NewLowP does). Sizes are checked; values are not (any int8 or bf16
// bit pattern is a weight), except that int8 scales must be finite.
func LowPFromRaw(p Precision, K, N int64, transposed bool, q []int8, h []uint16, scale []float32) (*LowP, error) {
	if K <= 0 || N <= 0 || K > math.MaxInt64/N {
		return nil, fmt.Errorf("low precision: bad shape K=%d N=%d", K, N)
	}
	n := K * N
	switch p {
	case Int8:
		if int64(len(q)) != n {
			return nil, fmt.Errorf("int8 weights: %d values for %dx%d", len(q), K, N)
		}
		if h != nil {
			return nil, fmt.Errorf("int8 weights: bf16 values given too")
		}
		if int64(len(scale)) != N {
			return nil, fmt.Errorf("int8 weights: %d scales for %d output channels", len(scale), N)
		}
		for i, s := range scale {
			if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
				return nil, fmt.Errorf("int8 weights: scale %d is %v", i, s)
			}
		}
	case BF16:
		if int64(len(h)) != n {
			return nil, fmt.Errorf("bf16 weights: %d values for %dx%d", len(h), K, N)
		}
		if q != nil || scale != nil {
			return nil, fmt.Errorf("bf16 weights: int8 values or scales given too")
		}
	default:
		return nil, fmt.Errorf("low precision: %q is not bf16 or int8", p)
	}
	l := &LowP{Prec: p, K: K, N: N, Transposed: transposed, Q: q, H: h, Scale: scale}
	if transposed && packable(p) {
		l.pack()
	}
	return l, nil
}

// LowPFromTensors decodes file tensors into a LowP stored output-major
// ([N, K], Transposed): w is I8 (with scale, F32 [N]) or BF16 (scale nil).
// Errors say what does not fit; callers add the tensor's name.
func LowPFromTensors(K, N int64, w tensorfile.RawTensor, scale *tensorfile.RawTensor) (*LowP, error) {
	if len(w.Shape) != 2 || w.Shape[0] != N || w.Shape[1] != K {
		return nil, fmt.Errorf("shape %v, want [%d, %d] (output-major)", w.Shape, N, K)
	}
	if int64(len(w.Data)) != K*N*int64(w.Dtype.Size()) {
		return nil, fmt.Errorf("%d bytes for %s%v", len(w.Data), w.Dtype, w.Shape)
	}
	switch w.Dtype {
	case tensorfile.I8:
		if scale == nil {
			return nil, fmt.Errorf("int8 weights without their scale tensor")
		}
		if scale.Dtype != tensorfile.F32 || len(scale.Shape) != 1 || scale.Shape[0] != N || int64(len(scale.Data)) != 4*N {
			return nil, fmt.Errorf("scale is %s%v (%d bytes), want F32[%d]", scale.Dtype, scale.Shape, len(scale.Data), N)
		}
		q := make([]int8, K*N)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&q[0])), len(q)), w.Data)
		s := make([]float32, N)
		for i := range s {
			s[i] = math.Float32frombits(binary.LittleEndian.Uint32(scale.Data[4*i:]))
		}
		return LowPFromRaw(Int8, K, N, true, q, nil, s)
	case tensorfile.BF16:
		if scale != nil {
			return nil, fmt.Errorf("bf16 weights with a scale tensor")
		}
		h := make([]uint16, K*N)
		if nativeLE {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), len(w.Data)), w.Data)
		} else {
			for i := range h {
				h[i] = binary.LittleEndian.Uint16(w.Data[2*i:])
			}
		}
		return LowPFromRaw(BF16, K, N, true, nil, h, nil)
	}
	return nil, fmt.Errorf("dtype %s is not a low-precision weight (want I8 or BF16)", w.Dtype)
}

// Tensors returns the weights as file tensors, output-major ([N, K]): I8
// plus an F32 [N] scale, or BF16 and a nil scale.
func (l *LowP) Tensors() (w tensorfile.RawTensor, scale *tensorfile.RawTensor) {
	q, h := l.unpacked()
	at := func(n, k int64) int64 { // storage index of output n, input k
		if l.Transposed {
			return n*l.K + k
		}
		return k*l.N + n
	}
	w.Shape = []int64{l.N, l.K}
	switch l.Prec {
	case Int8:
		w.Dtype = tensorfile.I8
		w.Data = make([]byte, l.K*l.N)
		for n := int64(0); n < l.N; n++ {
			for k := int64(0); k < l.K; k++ {
				w.Data[n*l.K+k] = byte(q[at(n, k)])
			}
		}
		s := tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: []int64{l.N}, Data: make([]byte, 4*l.N)}
		for n, v := range l.Scale {
			binary.LittleEndian.PutUint32(s.Data[4*n:], math.Float32bits(v))
		}
		return w, &s
	default:
		w.Dtype = tensorfile.BF16
		w.Data = make([]byte, 2*l.K*l.N)
		for n := int64(0); n < l.N; n++ {
			for k := int64(0); k < l.K; k++ {
				binary.LittleEndian.PutUint16(w.Data[2*(n*l.K+k):], h[at(n, k)])
			}
		}
		return w, nil
	}
}

// DequantizeInto writes the weights as float32 into w, a CPU float32
// tensor of shape [K, N] (Conv1D's layout) or [N, K] (Linear's), named by
// wTransposed; a square matrix needs the flag to say which. libtorch does
// the widening, scaling and any transpose (blocked and threaded).
func (l *LowP) DequantizeInto(w *ts.Tensor, wTransposed bool) error {
	want := []int64{l.K, l.N}
	if wTransposed {
		want = []int64{l.N, l.K}
	}
	if s := w.MustSize(); len(s) != 2 || s[0] != want[0] || s[1] != want[1] || w.DType() != gotch.Float || w.MustDevice().IsCuda() {
		return fmt.Errorf("dequantize: target %v %v, want a CPU float32 %v", s, w.DType(), want)
	}
	stored := []int64{l.K, l.N}
	if l.Transposed {
		stored = []int64{l.N, l.K}
	}
	var raw *ts.Tensor
	q, h := l.unpacked()
	if l.Prec == Int8 {
		raw = ts.MustEmpty(stored, gotch.Int8, gotch.CPU)
		copy(unsafe.Slice((*int8)(raw.MustDataPtr()), len(q)), q)
	} else {
		raw = ts.MustEmpty(stored, gotch.BFloat16, gotch.CPU)
		copy(unsafe.Slice((*uint16)(raw.MustDataPtr()), len(h)), h)
	}
	f := raw.MustTotype(gotch.Float, true)
	if l.Prec == Int8 {
		shape := []int64{1, l.N}
		if l.Transposed {
			shape = []int64{l.N, 1}
		}
		s := ts.MustOfSlice(l.Scale).MustView(shape, true)
		f = f.MustMul(s, true)
		s.MustDrop()
	}
	if l.Transposed != wTransposed {
		f = f.MustT(true)
	}
	torchrt.NoGrad(func() { w.Copy_(f) })
	f.MustDrop()
	return nil
}
