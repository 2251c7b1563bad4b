// Package nn holds the parameters of our models by their published names and
// the few layers the models share. Model files build their modules from a
// Path; weights are looked up by name when loaded (see model/weights).
package nn

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt" // also sets the BLAS kernel and OpenMP policy at start
)

// Init fills a new parameter.
type Init interface {
	fill(t *ts.Tensor, shape []int64)
}

// Normal draws from N(0, std²) (GPT-2's initializer_range).
type Normal struct{ Std float64 }

// Const fills with a value (LayerNorm weight 1, biases 0).
type Const struct{ Value float64 }

// KaimingUniform is PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// fan_in taken from dimension FanInDim of the shape.
type KaimingUniform struct{ FanIn int64 }

func (n Normal) fill(t *ts.Tensor, shape []int64) {
	torchrt.NoGrad(func() { t.MustNormal_(0, n.Std) })
}

func (c Const) fill(t *ts.Tensor, shape []int64) {
	torchrt.NoGrad(func() { t.MustFill_(ts.FloatScalar(c.Value)) })
}

func (k KaimingUniform) fill(t *ts.Tensor, shape []int64) {
	b := 1 / math.Sqrt(float64(k.FanIn))
	torchrt.NoGrad(func() { t.MustUniform_(-b, b) })
}

// Store owns a model's parameters, in creation order, by dotted name.
type Store struct {
	Device   gotch.Device
	order    []string
	params   map[string]*ts.Tensor
	autocast gotch.DType // matmul dtype when BFloat16 or Half (precision.go)
}

// NewStore returns an empty store whose parameters live on dev.
func NewStore(dev gotch.Device) *Store {
	return &Store{Device: dev, params: map[string]*ts.Tensor{}}
}

// Path is a name prefix inside a Store.
type Path struct {
	store  *Store
	prefix string
}

// Root is the empty prefix.
func (s *Store) Root() Path { return Path{store: s} }

// Sub appends a name component: p.Sub("h").Sub("0") names "h.0.*".
func (p Path) Sub(name string) Path {
	return Path{store: p.store, prefix: p.join(name)}
}

func (p Path) join(name string) string {
	if p.prefix == "" {
		return name
	}
	return p.prefix + "." + name
}

// Param creates a float32 parameter. Creating the same name twice is a
// programming error.
func (p Path) Param(name string, init Init, shape ...int64) *ts.Tensor {
	full := p.join(name)
	if _, dup := p.store.params[full]; dup {
		panic("nn: parameter created twice: " + full)
	}
	t := ts.MustZeros(shape, gotch.Float, p.store.Device)
	init.fill(t, shape)
	t.MustRequiresGrad_(true)
	p.store.order = append(p.store.order, full)
	p.store.params[full] = t
	return t
}

// Names lists parameter names in creation order.
func (s *Store) Names() []string { return append([]string(nil), s.order...) }

// Get returns the named parameter.
func (s *Store) Get(name string) (*ts.Tensor, bool) {
	t, ok := s.params[name]
	return t, ok
}

// SetTrainable turns gradient tracking on or off for every parameter whose
// name starts with prefix ("" = all). Frozen parameters get no .grad at all.
func (s *Store) SetTrainable(prefix string, on bool) {
	for _, n := range s.order {
		if prefix == "" || n == prefix || strings.HasPrefix(n, prefix+".") {
			s.params[n].MustRequiresGrad_(on)
		}
	}
}

// Named is a parameter with its name.
type Named struct {
	Name   string
	Tensor *ts.Tensor
}

// Trainable lists the parameters that require gradients, in creation order.
func (s *Store) Trainable() []Named {
	var out []Named
	for _, n := range s.order {
		if t := s.params[n]; t.MustRequiresGrad() {
			out = append(out, Named{n, t})
		}
	}
	return out
}

// All lists every parameter in creation order.
func (s *Store) All() []Named {
	out := make([]Named, len(s.order))
	for i, n := range s.order {
		out[i] = Named{n, s.params[n]}
	}
	return out
}

// NumParams counts the scalars in parameters under prefix ("" = all).
func (s *Store) NumParams(prefix string) int64 {
	var total int64
	for _, n := range s.order {
		if prefix == "" || strings.HasPrefix(n, prefix+".") {
			total += int64(s.params[n].Numel())
		}
	}
	return total
}

// Assign copies src into the named parameter after checking its shape.
// src may be any float dtype; it is converted to the parameter's dtype.
func (s *Store) Assign(name string, src *ts.Tensor) error {
	dst, ok := s.params[name]
	if !ok {
		return fmt.Errorf("no parameter %q in the model", name)
	}
	if got, want := src.MustSize(), dst.MustSize(); !slices.Equal(got, want) {
		return fmt.Errorf("tensor %q has shape %v, the model expects %v", name, got, want)
	}
	torchrt.NoGrad(func() { dst.Copy_(src) })
	return nil
}

// Missing lists parameter names not in have, sorted.
func (s *Store) Missing(have map[string]bool) []string {
	var out []string
	for _, n := range s.order {
		if !have[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
