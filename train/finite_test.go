package train

import (
	"math"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// The gradient-only poison path (finite loss, NaN gradient): the global
// norm the step checks turns non-finite, and the gradient is named.
func TestNonFiniteGradientIsFoundAndNamed(t *testing.T) {
	store := nn.NewStore(gotch.CPU)
	a := store.Root().Param("a", nn.Const{Value: 1}, 3)
	b := store.Root().Param("b", nn.Const{Value: 2}, 2)
	loss := a.MustSum(gotch.Float, false).MustAdd(b.MustSum(gotch.Float, false), true)
	loss.MustBackward()
	loss.MustDrop()
	params := store.Trainable()
	if n := gradNorm(params); !finite(n) || math.Abs(n-math.Sqrt(5)) > 1e-6 {
		t.Fatalf("finite gradients: norm %v, want sqrt(5)", n)
	}
	if name, err := firstNonFinite(params, true); err != nil || name != "" {
		t.Fatalf("finite gradients: %q %v", name, err)
	}
	g := b.MustGrad(false)
	g.MustFill_(ts.FloatScalar(math.NaN())) // the loss above stayed finite
	g.MustDrop()
	if n := gradNorm(params); finite(n) {
		t.Fatalf("NaN gradient: norm %v is finite", n)
	}
	name, err := firstNonFinite(params, true)
	if err != nil || !strings.Contains(name, "gradient of b") {
		t.Fatalf("NaN gradient named %q (%v), want the gradient of b", name, err)
	}
	if name, err := firstNonFinite(params, false); err != nil || name != "" {
		t.Fatalf("parameters are finite, got %q %v", name, err)
	}
}
