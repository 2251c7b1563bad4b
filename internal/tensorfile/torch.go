package tensorfile

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// ToTorch copies a raw tensor into a new libtorch tensor on dev. Floating
// types (F16, BF16, F64 included) become float32, the dtype every model here
// computes in on CPU; integer types keep their width as int64.
func ToTorch(name string, rt RawTensor, dev gotch.Device) (*ts.Tensor, error) {
	shape := rt.Shape
	scalar := len(shape) == 0
	if scalar {
		shape = []int64{1} // gotch cannot build 0-d tensors from data; viewed back below
	}
	switch rt.Dtype {
	case F32, F16, BF16, F64:
		if n := rt.NumElements(); n > 0 && int64(len(rt.Data)) == n*int64(rt.Dtype.Size()) {
			// Decode straight into the tensor: gotch's NewTensorFromData
			// checks every element through reflection (seconds for GPT-2).
			t := ts.MustEmpty(shape, gotch.Float, gotch.CPU)
			if err := ToFloat32Into(rt.Dtype, rt.Data, unsafe.Slice((*float32)(t.MustDataPtr()), n)); err != nil {
				t.MustDrop()
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
			return onDevice(t, dev, scalar), nil
		}
		vals, err := ToFloat32(rt.Dtype, rt.Data)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if int64(len(vals)) != rt.NumElements() {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", name, len(vals), rt.Shape)
		}
		t, err := ts.NewTensorFromData(vals, shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return onDevice(t, dev, scalar), nil
	case I64, I32, I16, I8, U8, BOOL:
		vals, err := toInt64(rt)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := ts.NewTensorFromData(vals, shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		return onDevice(t, dev, scalar), nil
	}
	return nil, fmt.Errorf("tensor %q: dtype %s cannot be loaded", name, rt.Dtype)
}

func onDevice(t *ts.Tensor, dev gotch.Device, scalar bool) *ts.Tensor {
	if scalar {
		t = t.MustSqueeze(true)
	}
	if !dev.IsCuda() {
		return t
	}
	return t.MustTo(dev, true)
}

func toInt64(rt RawTensor) ([]int64, error) {
	n := int(rt.NumElements())
	size := rt.Dtype.Size()
	if len(rt.Data) != n*size {
		return nil, fmt.Errorf("%d bytes for %d elements of %s", len(rt.Data), n, rt.Dtype)
	}
	out := make([]int64, n)
	for i := 0; i < n; i++ {
		b := rt.Data[i*size : (i+1)*size]
		var v int64
		switch rt.Dtype {
		case I64:
			v = int64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		case I32:
			v = int64(int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24))
		case I16:
			v = int64(int16(uint16(b[0]) | uint16(b[1])<<8))
		case I8:
			v = int64(int8(b[0]))
		case U8, BOOL:
			v = int64(b[0])
		}
		out[i] = v
	}
	return out, nil
}

// FromTorch copies a float tensor to a raw F32 tensor (for writers).
func FromTorch(t *ts.Tensor) (RawTensor, error) {
	c := t.MustDetach(false).MustTo(gotch.CPU, true).MustContiguous(true)
	defer c.MustDrop()
	if c.DType() != gotch.Float {
		f := c.MustTotype(gotch.Float, false)
		defer f.MustDrop()
		c = f
	}
	n := int(c.Numel())
	vals := make([]float32, n)
	if n > 0 {
		if err := c.CopyData(vals, uint(n)); err != nil {
			return RawTensor{}, err
		}
	}
	return RawTensor{Dtype: F32, Shape: c.MustSize(), Data: f32Bytes(vals)}, nil
}

// Lookup gives a raw tensor by name; every reader in this package has one.
type Lookup interface {
	Names() []string
	Tensor(name string) (RawTensor, error)
}

func f32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return out
}
