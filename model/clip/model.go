package clip

import (
	"fmt"

	"github.com/clipcap/clipcap/internal/torchrt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// Model is a CLIP image tower in eval mode.
type Model struct {
	Config Config
	// ArchSource says where the architecture came from (a config file
	// beside the weights, or build_model's shape inference), for logs.
	ArchSource string
	dev        gotch.Device
	dtype      gotch.DType // dtype of the converted weights and of the computation
	vit        *visionTransformer
	rn         *modifiedResNet
	noBias     *ts.Tensor
	store      *nn.Store // set by Load: owns the float32 weights
	// converted holds the reduced-precision copies made by convert; the
	// store keeps its float32 originals.
	converted []*ts.Tensor
	prec      nn.Precision // SetPrecision's (precision.go)
}

// New creates a tower with random weights under p (normally
// store.Root().Sub("visual"), so parameter names match OpenAI's). It
// validates cfg first.
func New(p nn.Path, dev gotch.Device, cfg Config) (*Model, error) {
	return newModel(p, dev, cfg, true)
}

// newModel builds the tower; random=false allocates zeroed weights for a
// checkpoint to fill.
func newModel(p nn.Path, dev gotch.Device, cfg Config, random bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &builder{random: random, noBias: ts.NewTensor()}
	m := &Model{Config: cfg, dev: dev, dtype: gotch.Float, noBias: b.noBias}
	if cfg.Kind == ViT {
		m.vit = b.visionTransformer(p, cfg)
	} else {
		m.rn = b.modifiedResNet(p, cfg)
	}
	return m, nil
}

// DType is the dtype the tower computes in (Float, or Half after Half()).
func (m *Model) DType() gotch.DType { return m.dtype }

// Encode maps normalized images [B, 3, n, n] (n = Config.InputResolution)
// to float32 embeddings [B, EmbedDim], without tracking gradients. images
// is not freed; the caller owns the result.
func (m *Model) Encode(images *ts.Tensor) (*ts.Tensor, error) {
	shape, err := images.Size()
	if err != nil {
		return nil, fmt.Errorf("clip: encode: %w", err)
	}
	n := m.Config.InputResolution
	if len(shape) != 4 || shape[0] < 1 || shape[1] != 3 || shape[2] != n || shape[3] != n {
		return nil, fmt.Errorf("clip: encode: images have shape %v, want [B, 3, %d, %d]", shape, n, n)
	}
	if !gotch.IsFloatDType(images.DType()) {
		return nil, fmt.Errorf("clip: encode: images have dtype %v, want a floating-point tensor", images.DType())
	}
	var out *ts.Tensor
	// The tower is never trained here: no autograd graph (torchrt.NoGrad
	// pins the thread, since libtorch's grad mode is per OS thread).
	torchrt.NoGrad(func() {
		x := images
		if images.DType() != m.dtype || !sameDevice(images.MustDevice(), m.dev) {
			x = images.MustTo(m.dev, false).MustTotype(m.dtype, true)
			defer x.MustDrop()
		}
		if m.vit != nil {
			out = m.vit.forward(x)
		} else {
			out = m.rn.forward(x)
		}
		if out.DType() != gotch.Float {
			out = out.MustTotype(gotch.Float, true)
		}
	})
	return out, nil
}

// Half switches the tower to float16 the way clip.load does on CUDA:
// convolution, linear and projection weights (and the embeddings added to
// their outputs) become fp16, LayerNorm and BatchNorm statistics stay
// float32. libtorch has no fp16 kernels for these layers on CPU, so a CPU
// model returns an error.
func (m *Model) Half() error {
	if !m.dev.IsCuda() {
		return fmt.Errorf("clip: --half needs a CUDA device; this model is on the CPU, which computes in float32")
	}
	m.convert(gotch.Half)
	return nil
}

// convert replaces the convertible weights with copies in dt. Tests use it
// with Double on CPU, which exercises the same casts as Half on CUDA.
func (m *Model) convert(dt gotch.DType) {
	var ws []**ts.Tensor
	if m.vit != nil {
		ws = m.vit.weights()
	} else {
		ws = m.rn.weights()
	}
	for _, w := range ws {
		c := (*w).MustTotype(dt, false)
		*w = c
		m.converted = append(m.converted, c)
	}
	m.dtype = dt
}

// sameDevice compares devices by kind and CUDA index: a CPU tensor reports
// {CPU 1}, which never equals gotch.CPU, and copying pixels to "another" CPU
// would cost a full copy of every batch.
func sameDevice(a, b gotch.Device) bool {
	if a.IsCuda() || b.IsCuda() {
		return a.IsCuda() && b.IsCuda() && a.Value == b.Value
	}
	return true
}
