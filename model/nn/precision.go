package nn

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Mixed precision follows torch.autocast's recipe, by hand because gotch
// exposes no CPU autocast: matrix products (Linear, Conv1D, attention, the
// LM head) run in a reduced dtype on casts of their fp32 operands and hand
// back fp32, so the parameters stay fp32 master weights and layer norm,
// softmax and the loss stay fp32. Autograd carries the gradients back
// through the casts, in fp32, into the parameters.

// SetAutocast makes the matrix products of the layers built from this
// store compute in dt: gotch.BFloat16 or gotch.Half, or gotch.Float for
// plain fp32 (the default).
func (s *Store) SetAutocast(dt gotch.DType) error {
	switch dt {
	case gotch.Float, gotch.BFloat16, gotch.Half:
		s.autocast = dt
		return nil
	}
	return fmt.Errorf("nn: autocast dtype %v is not Float, BFloat16 or Half", dt)
}

// Autocast is the dtype matrix products compute in (gotch.Float when off).
func (s *Store) Autocast() gotch.DType {
	if dt, ok := s.lowp(); ok {
		return dt
	}
	return gotch.Float
}

// lowp returns the reduced dtype when autocast is on; a nil store (a layer
// built outside one) is plain fp32.
func (s *Store) lowp() (gotch.DType, bool) {
	if s == nil || (s.autocast != gotch.BFloat16 && s.autocast != gotch.Half) {
		return gotch.Float, false
	}
	return s.autocast, true
}

// Store returns the store this path creates parameters in.
func (p Path) Store() *Store { return p.store }

// Matmul is torch.matmul(a, b) in the store's autocast dtype, returned as
// fp32; without autocast it is a plain matmul. a and b are not freed.
func (s *Store) Matmul(a, b *ts.Tensor) *ts.Tensor {
	dt, ok := s.lowp()
	if !ok {
		return a.MustMatmul(b, false)
	}
	al, bl := a.MustTotype(dt, false), b.MustTotype(dt, false)
	y := al.MustMatmul(bl, true)
	bl.MustDrop()
	return y.MustTotype(gotch.Float, true)
}

// lowpAffine is x·w + b (w [in, out], b [out] or nil) over x's flattened
// leading dimensions, computed in dt and returned as fp32.
func lowpAffine(x, w, b *ts.Tensor, dt gotch.DType) *ts.Tensor {
	shape := x.MustSize()
	in := shape[len(shape)-1]
	outShape := append(append([]int64{}, shape[:len(shape)-1]...), w.MustSize()[1])
	x2 := x.MustReshape([]int64{-1, in}, false)
	xl := x2.MustTotype(dt, true)
	wl := w.MustTotype(dt, false)
	var y *ts.Tensor
	if b == nil {
		y = xl.MustMm(wl, true)
	} else {
		bl := b.MustTotype(dt, false)
		y = bl.MustAddmm(xl, wl, true)
		xl.MustDrop()
	}
	wl.MustDrop()
	return y.MustTotype(gotch.Float, true).MustView(outShape, true)
}
