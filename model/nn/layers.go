package nn

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Linear is torch.nn.Linear: weight [out, in], optional bias [out].
type Linear struct {
	Weight, Bias *ts.Tensor
	store        *Store // its autocast setting; nil for layers built outside a store
	// Low, when set, holds the weight in bf16 or int8 for inference and
	// replaces Weight in Forward.
	Low *LowP
}

// NewLinear creates "<p>.weight" and, with bias, "<p>.bias" using PyTorch's
// default initialization.
func NewLinear(p Path, in, out int64, bias bool) *Linear {
	l := &Linear{Weight: p.Param("weight", KaimingUniform{FanIn: in}, out, in), store: p.store}
	if bias {
		l.Bias = p.Param("bias", KaimingUniform{FanIn: in}, out)
	}
	return l
}

// Forward maps [..., in] to [..., out]. x is not freed.
func (l *Linear) Forward(x *ts.Tensor) *ts.Tensor {
	if l.Low != nil {
		return l.Low.Forward(x, l.Bias)
	}
	wt := l.Weight.MustT(false)
	defer wt.MustDrop()
	if dt, ok := l.store.lowp(); ok {
		return lowpAffine(x, wt, l.Bias, dt)
	}
	if l.Bias == nil {
		return x.MustMatmul(wt, false)
	}
	return affine(x, wt, l.Bias)
}

// rows is the number of vectors in x once its leading dimensions are flattened.
func rows(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape[:len(shape)-1] {
		n *= d
	}
	return n
}

// Conv1D is HuggingFace GPT-2's Conv1D: a linear layer whose weight is
// stored transposed, [in, out], under the published names.
type Conv1D struct {
	Weight, Bias *ts.Tensor
	store        *Store
	Low          *LowP // as Linear.Low
}

// NewConv1D creates "<p>.weight" [in, out] ~ N(0, std) and "<p>.bias" = 0.
func NewConv1D(p Path, in, out int64, std float64) *Conv1D {
	return &Conv1D{
		Weight: p.Param("weight", Normal{Std: std}, in, out),
		Bias:   p.Param("bias", Const{0}, out),
		store:  p.store,
	}
}

// Forward maps [..., in] to [..., out]. x is not freed.
func (c *Conv1D) Forward(x *ts.Tensor) *ts.Tensor {
	if c.Low != nil {
		return c.Low.Forward(x, c.Bias)
	}
	if dt, ok := c.store.lowp(); ok {
		return lowpAffine(x, c.Weight, c.Bias, dt)
	}
	return affine(x, c.Weight, c.Bias)
}

// affine computes x·w + b (w is [in, out]) over the flattened leading
// dimensions: this package's small-batch kernel for a few vectors (beam
// search's rows), gemv for a single vector — the batch-1 decoding step,
// where sgemm's packing of the whole weight matrix for one row made it
// about twice as slow — and gemm otherwise.
func affine(x, w, b *ts.Tensor) *ts.Tensor {
	shape := x.MustSize()
	in := shape[len(shape)-1]
	out := w.MustSize()[1]
	outShape := append(append([]int64{}, shape[:len(shape)-1]...), out)
	n := rows(shape)
	if n > 1 && n <= SmallRows {
		x2 := x.MustReshape([]int64{n, in}, false)
		y := smallMatmul(x2, w, b, false)
		x2.MustDrop()
		if y != nil {
			return y.MustView(outShape, true)
		}
	}
	if n == 1 {
		v := x.MustReshape([]int64{in}, false)
		wt := w.MustT(false) // [out, in] view
		y := b.MustAddmv(wt, v, false)
		v.MustDrop()
		wt.MustDrop()
		return y.MustView(outShape, true)
	}
	x2 := x.MustReshape([]int64{-1, in}, false)
	y := b.MustAddmm(x2, w, false)
	x2.MustDrop()
	return y.MustView(outShape, true)
}

// LayerNorm over the last dimension.
type LayerNorm struct {
	Weight, Bias *ts.Tensor
	Eps          float64
}

// NewLayerNorm creates "<p>.weight" = 1 and "<p>.bias" = 0.
func NewLayerNorm(p Path, dim int64, eps float64) *LayerNorm {
	return &LayerNorm{
		Weight: p.Param("weight", Const{1}, dim),
		Bias:   p.Param("bias", Const{0}, dim),
		Eps:    eps,
	}
}

// Forward normalizes x; x is not freed.
func (l *LayerNorm) Forward(x *ts.Tensor) *ts.Tensor {
	dim := l.Weight.MustSize()
	return ts.MustLayerNorm(x, dim, l.Weight, l.Bias, l.Eps, false)
}

// Dropout applies dropout with probability p in training mode, and frees x
// when it returns a new tensor. In eval mode or with p = 0 it returns x.
func Dropout(x *ts.Tensor, p float64, train bool) *ts.Tensor {
	if !train || p == 0 {
		return x
	}
	y := ts.MustDropout(x, p, true)
	x.MustDrop()
	return y
}

// SetPrecision stores the layer's weight in p for inference (fp32 goes
// back to Weight). It returns the bytes one product reads.
func (l *Linear) SetPrecision(p Precision) (int64, error) {
	low, err := setPrecision(l.Weight, true, p)
	l.Low = low
	return lowBytes(low, l.Weight), err
}

// SetPrecision is Linear.SetPrecision for Conv1D. The low-precision copy
// is stored transposed, [out, in] like Linear's: each output's weights are
// then one contiguous run, read front to back, where the [in, out] layout
// streamed short row pieces that the prefetcher could not follow (measured
// at a third of the speed).
func (c *Conv1D) SetPrecision(p Precision) (int64, error) {
	if p == FP32 || p == "" {
		c.Low = nil
		return lowBytes(nil, c.Weight), nil
	}
	wt := c.Weight.MustT(false).MustContiguous(true)
	low, err := setPrecision(wt, true, p)
	wt.MustDrop()
	c.Low = low
	return lowBytes(low, c.Weight), err
}

func setPrecision(w *ts.Tensor, transposed bool, p Precision) (*LowP, error) {
	if p == FP32 || p == "" {
		return nil, nil
	}
	if w.MustDevice().IsCuda() {
		return nil, fmt.Errorf("%s weights are a CPU inference format; on CUDA use fp32", p)
	}
	return NewLowP(w, transposed, p)
}

func lowBytes(l *LowP, w *ts.Tensor) int64 {
	if l != nil {
		return l.Bytes()
	}
	return 4 * int64(w.Numel())
}
