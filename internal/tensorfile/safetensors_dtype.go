package tensorfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// Dtype names an element type the way the safetensors header spells it
// ("F32", "BF16", ...). The raw readers in this package (safetensors, .npy,
// torch pickles) all report their tensors with these names so callers handle
// one vocabulary.
type Dtype string

// Element types understood by the raw readers and writers.
const (
	F64  Dtype = "F64"
	F32  Dtype = "F32"
	F16  Dtype = "F16"
	BF16 Dtype = "BF16"
	I64  Dtype = "I64"
	I32  Dtype = "I32"
	I16  Dtype = "I16"
	I8   Dtype = "I8"
	U8   Dtype = "U8"
	BOOL Dtype = "BOOL"
)

// dtypeSizes lists every known dtype with its element size in bytes.
var dtypeSizes = map[Dtype]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
	// Accepted in safetensors headers so such files open; not convertible.
	"U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}

// Size returns the element size in bytes, or 0 for an unknown dtype.
func (d Dtype) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a dtype this package knows.
func (d Dtype) Valid() bool { return dtypeSizes[d] != 0 }

// RawTensor is a tensor as bytes: little-endian elements in C (row-major)
// order. Data may be a view into a memory-mapped file; it is valid until
// the file that produced it is closed.
type RawTensor struct {
	Dtype Dtype
	Shape []int64
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar).
func (t RawTensor) NumElements() int64 { return numElements(t.Shape) }

// Float32 converts the tensor's elements to float32.
func (t RawTensor) Float32() ([]float32, error) { return ToFloat32(t.Dtype, t.Data) }

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// checkedByteLen returns numel*size for shape, or an error when a dimension
// is negative or the product overflows: both mean a corrupt header.
func checkedByteLen(shape []int64, size int) (int64, error) {
	n := int64(size)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v overflows", shape)
		}
		n *= d
	}
	return n, nil
}

// ToFloat32 decodes little-endian elements of dtype into float32 values.
// Integer and bool types convert by value (large int64s lose precision).
func ToFloat32(dtype Dtype, b []byte) ([]float32, error) {
	size := dtype.Size()
	if size == 0 {
		return nil, fmt.Errorf("ToFloat32: unknown dtype %q", dtype)
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("ToFloat32: %d bytes is not a whole number of %s elements", len(b), dtype)
	}
	out := make([]float32, len(b)/size)
	if err := ToFloat32Into(dtype, b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ToFloat32Into is ToFloat32 decoding into out, which must hold exactly
// the elements in b (loaders decode straight into a tensor's memory).
func ToFloat32Into(dtype Dtype, b []byte, out []float32) error {
	size := dtype.Size()
	if size == 0 || len(b) != size*len(out) {
		return fmt.Errorf("ToFloat32: %d bytes of %q for %d values", len(b), dtype, len(out))
	}
	switch dtype {
	case F32:
		if littleEndian {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), len(b)), b)
			break
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case F16:
		tab := f16Table()
		for i := range out {
			out[i] = tab[binary.LittleEndian.Uint16(b[2*i:])]
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case I64:
		for i := range out {
			out[i] = float32(int64(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case I32:
		for i := range out {
			out[i] = float32(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = float32(int8(b[i]))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = float32(b[i])
		}
	default:
		return fmt.Errorf("ToFloat32: conversion from %s is not supported", dtype)
	}
	return nil
}

// littleEndian: float32 file data can be copied as it is.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// FromFloat32 encodes values as little-endian elements of a floating dtype
// (F32, F64, F16 or BF16). F16 and BF16 round to nearest even, as torch does.
func FromFloat32(dtype Dtype, v []float32) ([]byte, error) {
	switch dtype {
	case F32:
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b, nil
	case F64:
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(x)))
		}
		return b, nil
	case F16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToFloat16(x))
		}
		return b, nil
	case BF16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToBFloat16(x))
		}
		return b, nil
	}
	return nil, fmt.Errorf("FromFloat32: cannot encode floats as %q", dtype)
}

var (
	f16Once sync.Once
	f16Tab  []float32
)

// f16Table holds all 65536 widened half values: a lookup is several times
// faster than decoding the bit fields for every element of a large tensor.
func f16Table() []float32 {
	f16Once.Do(func() {
		f16Tab = make([]float32, 1<<16)
		for i := range f16Tab {
			f16Tab[i] = Float16ToFloat32(uint16(i))
		}
	})
	return f16Tab
}

// Float16ToFloat32 widens an IEEE 754 half-precision value exactly.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN: keep the payload's top bits
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = mant * 2^-24, exactly representable in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// Float32ToFloat16 narrows to half precision with round-to-nearest-even,
// overflowing to infinity and keeping NaNs NaN.
func Float32ToFloat16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int32(bits>>23) & 0xff
	mant := bits & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 // quiet NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is subnormal (or zero): shift the implicit-1 mantissa right.
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, which correctly rounds up to inf
	}
	return sign | uint16(r)
}

// Float32ToBFloat16 narrows to bfloat16 with round-to-nearest-even.
func Float32ToBFloat16(f float32) uint16 {
	bits := math.Float32bits(f)
	if bits&0x7fffffff > 0x7f800000 {
		return uint16(bits>>16) | 0x40 // quiet NaN
	}
	bits += 0x7fff + (bits>>16)&1
	return uint16(bits >> 16)
}
