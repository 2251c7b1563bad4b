package train

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// ErrNonFinite is wrapped by the error that stops a run whose loss,
// gradients or parameters hold a NaN or an infinity. The run stops before
// the optimizer step (so the weights stay finite) and never writes such
// weights into a checkpoint: resuming from the latest checkpoint with a
// lower lr or a grad_clip is always possible.
var ErrNonFinite = fmt.Errorf("non-finite values in training")

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// gradNorm is the global 2-norm of the gradients, as ClipGradNorm computes
// it, without scaling anything: one pass over the gradients and one device
// sync. It is non-finite exactly when some gradient element is (or the
// squares overflow, which is as fatal).
func gradNorm(params []nn.Named) float64 { return ClipGradNorm(params, math.Inf(1)) }

// firstNonFinite names the first tensor holding a NaN or Inf: a parameter,
// or (grads) a parameter's gradient. "" when all are finite.
func firstNonFinite(params []nn.Named, grads bool) (name string, err error) {
	noGrad(func() {
		for _, p := range params {
			x, label := p.Tensor, p.Name
			if grads {
				g, gerr := p.Tensor.Grad(false)
				if gerr != nil {
					err = gerr
					return
				}
				if !g.MustDefined() {
					g.MustDrop()
					continue
				}
				x, label = g, "the gradient of "+p.Name
				defer g.MustDrop()
			}
			ok, ferr := allFinite(x)
			if ferr != nil {
				err = fmt.Errorf("%s: %w", label, ferr)
				return
			}
			if !ok {
				name = label
				return
			}
		}
	})
	return name, err
}

// allFinite reports whether every element of x is finite.
func allFinite(x *ts.Tensor) (bool, error) {
	f, err := x.Isfinite(false)
	if err != nil {
		return false, err
	}
	a, err := f.All(true)
	if err != nil {
		return false, err
	}
	v := a.Int64Values(true)
	return len(v) == 1 && v[0] == 1, nil
}
