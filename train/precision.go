package train

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// The precision key: fp32, or matrix products in bf16 / fp16 with fp32
// master weights, optimizer state, layer norm, softmax and loss (see
// model/nn's SetAutocast). Checkpoints are fp32 whatever the precision.

func (c Config) validatePrecision() error {
	switch c.Precision {
	case "", "fp32", "bf16":
		return nil
	case "fp16":
		if c.Device != "cuda" {
			return fmt.Errorf("precision: fp16 needs device cuda (CPUs have no fast fp16 matmul); use bf16 on a CPU")
		}
		return nil
	}
	return fmt.Errorf("precision: %q is not fp32, bf16 or fp16", c.Precision)
}

// computeDType is the dtype of the run's matrix products.
func (c Config) computeDType() gotch.DType {
	switch c.Precision {
	case "bf16":
		return gotch.BFloat16
	case "fp16":
		return gotch.Half
	}
	return gotch.Float
}

// lossScaler is torch.cuda.amp.GradScaler's dynamic loss scaling, which
// fp16 needs (its range underflows small gradients): the loss is multiplied
// by scale before backward and the gradients divided by it after; a step
// whose gradients hold inf or NaN is skipped and the scale halved, and
// after growthInterval good steps in a row the scale doubles. Scales are
// powers of two, so scaling and unscaling are exact in float arithmetic.
type lossScaler struct {
	scale          float64
	good           int // finite steps since the last change of scale
	growthInterval int
	skipped        int // steps skipped in this process, for the log
}

const (
	initLossScale  = 65536 // GradScaler's init_scale
	growthInterval = 2000  // GradScaler's growth_interval
)

// newLossScaler starts at scale, or at GradScaler's 2^16 when scale is 0
// (a fresh run).
func newLossScaler(scale float64, good int) *lossScaler {
	if scale <= 0 {
		scale = initLossScale
	}
	return &lossScaler{scale: scale, good: good, growthInterval: growthInterval}
}

// scaleLoss returns loss·scale, freeing loss; a nil scaler returns loss.
func (s *lossScaler) scaleLoss(loss *ts.Tensor) *ts.Tensor {
	if s == nil {
		return loss
	}
	return loss.MustMulScalar(ts.FloatScalar(s.scale), true)
}

// factor is what scaleLoss multiplied by.
func (s *lossScaler) factor() float64 {
	if s == nil {
		return 1
	}
	return s.scale
}

// unscale divides the gradients by the scale and updates the scale; it
// reports whether the optimizer may step (every gradient finite). A nil
// scaler always may.
func (s *lossScaler) unscale(params []nn.Named) bool {
	if s == nil {
		return true
	}
	finite := true
	noGrad(func() {
		// One host sync for all parameters: inf and NaN survive a sum.
		var sum *ts.Tensor
		for _, p := range params {
			g := p.Tensor.MustGrad(false)
			if !g.MustDefined() {
				g.MustDrop()
				continue
			}
			g.MustMulScalar_(ts.FloatScalar(1 / s.scale))
			gs := g.MustSum(gotch.Double, false) // no overflow of a finite sum
			g.MustDrop()
			if sum == nil {
				sum = gs
			} else {
				sum = sum.MustAdd(gs, true)
				gs.MustDrop()
			}
		}
		if sum != nil {
			v := sum.Float64Values(true)[0]
			finite = !math.IsInf(v, 0) && !math.IsNaN(v)
		}
	})
	if !finite {
		s.scale /= 2
		s.good = 0
		s.skipped++
		return false
	}
	s.good++
	if s.good >= s.growthInterval {
		s.scale *= 2
		s.good = 0
	}
	return true
}
