package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// gotch smoke test: forward + backward of a 2x2 linear layer and AdamW
// steps give the numbers computed by hand in float64.
func TestAdamWByHand(t *testing.T) {
	store := nn.NewStore(gotch.CPU)
	lin := nn.NewLinear(store.Root().Sub("l"), 2, 2, true)
	w := [2][2]float64{{0.5, -0.25}, {0.125, 1.0}}
	b := [2]float64{0.1, -0.2}
	x := [2]float64{1, 2}
	target := [2]float64{1, -1}
	store.Assign("l.weight", ts.MustOfSlice([]float32{0.5, -0.25, 0.125, 1.0}).MustView([]int64{2, 2}, true))
	store.Assign("l.bias", ts.MustOfSlice([]float32{0.1, -0.2}))
	params := store.Trainable()
	const wd = 0.01
	opt := NewAdamW(params, wd)
	var mw, vw [2][2]float64
	var mb, vb [2]float64
	lrs := []float64{0.1, 0.05, 0.2}
	for step, lr := range lrs {
		// By hand: y = W·x + b, loss = Σ(y - target)², dL/dy = 2(y - target).
		var y, dy [2]float64
		var loss float64
		for i := 0; i < 2; i++ {
			y[i] = w[i][0]*x[0] + w[i][1]*x[1] + b[i]
			dy[i] = 2 * (y[i] - target[i])
			loss += (y[i] - target[i]) * (y[i] - target[i])
		}
		tt := float64(step + 1)
		ss := lr * math.Sqrt(1-math.Pow(0.999, tt)) / (1 - math.Pow(0.9, tt))
		upd := func(p *float64, g float64, m, v *float64) {
			*m = 0.9**m + 0.1*g
			*v = 0.999**v + 0.001*g*g
			*p -= ss * *m / (math.Sqrt(*v) + 1e-6)
			*p *= 1 - lr*wd
		}
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				upd(&w[i][j], dy[i]*x[j], &mw[i][j], &vw[i][j])
			}
			upd(&b[i], dy[i], &mb[i], &vb[i])
		}

		// gotch
		xt := ts.MustOfSlice([]float32{1, 2}).MustView([]int64{1, 2}, true)
		tg := ts.MustOfSlice([]float32{1, -1}).MustView([]int64{1, 2}, true)
		yt := lin.Forward(xt)
		lt := yt.MustSub(tg, true).MustSquare(true).MustSum(gotch.Float, true)
		if got := lt.Float64Values()[0]; math.Abs(got-loss) > 1e-5*math.Max(1, loss) {
			t.Fatalf("step %d: loss %v, by hand %v", step, got, loss)
		}
		lt.MustBackward()
		g := lin.Bias.MustGrad(false)
		if gv := g.Float64Values(true); math.Abs(gv[0]-dy[0]) > 1e-5 || math.Abs(gv[1]-dy[1]) > 1e-5 {
			t.Fatalf("step %d: bias grad %v, by hand %v", step, gv, dy)
		}
		opt.Step(lr)
		ZeroGrad(params)
		lt.MustDrop()
		xt.MustDrop()
		tg.MustDrop()

		gw := lin.Weight.MustDetach(false).Float64Values(true)
		gb := lin.Bias.MustDetach(false).Float64Values(true)
		want := []float64{w[0][0], w[0][1], w[1][0], w[1][1]}
		for i := range want {
			if math.Abs(gw[i]-want[i]) > 2e-6 {
				t.Errorf("step %d: weight[%d] = %.8f, by hand %.8f", step, i, gw[i], want[i])
			}
		}
		for i := range b {
			if math.Abs(gb[i]-b[i]) > 2e-6 {
				t.Errorf("step %d: bias[%d] = %.8f, by hand %.8f", step, i, gb[i], b[i])
			}
		}
	}
	g := lin.Weight.MustGrad(false)
	if v := g.Float64Values(true); v[0] != 0 || v[3] != 0 {
		t.Errorf("ZeroGrad left %v", v)
	}
}

func TestLinearWarmup(t *testing.T) {
	cases := []struct {
		step, warm, total int
		want              float64
	}{
		{0, 5, 25, 0}, {2, 5, 25, 0.4}, {5, 5, 25, 1}, {15, 5, 25, 0.5}, {25, 5, 25, 0}, {30, 5, 25, 0},
		{0, 0, 10, 1}, {4, 0, 10, 0.6},
	}
	for _, c := range cases {
		if got := LinearWarmup(c.step, c.warm, c.total); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("LinearWarmup(%d, %d, %d) = %v, want %v", c.step, c.warm, c.total, got, c.want)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	store := nn.NewStore(gotch.CPU)
	a := store.Root().Param("a", nn.Const{Value: 1}, 2)
	c := store.Root().Param("c", nn.Const{Value: 1}, 1)
	// Σ (3a₀ + 4a₁ + 12c) → grads (3, 4) and (12): global norm 13.
	coef := ts.MustOfSlice([]float32{3, 4})
	s := a.MustMul(coef, false).MustSum(gotch.Float, true)
	s2 := c.MustMulScalar(ts.FloatScalar(12), false).MustSum(gotch.Float, true)
	tot := s.MustAdd(s2, true)
	tot.MustBackward()
	norm := ClipGradNorm(store.Trainable(), 6.5)
	if math.Abs(norm-13) > 1e-5 {
		t.Fatalf("norm %v, want 13", norm)
	}
	ga := a.MustGrad(false).Float64Values(true)
	gc := c.MustGrad(false).Float64Values(true)
	if math.Abs(ga[0]-1.5) > 1e-5 || math.Abs(ga[1]-2) > 1e-5 || math.Abs(gc[0]-6) > 1e-5 {
		t.Errorf("clipped grads %v %v, want [1.5 2] [6]", ga, gc)
	}
}

// The fused one-pass step (the CPU path) against libtorch's elementwise ops
// (the CUDA path) on the same parameters and gradients, 5 steps with weight
// decay: a parameter spanning several work spans (split over threads), a
// small one, and a non-contiguous one that must take libtorch's path.
func TestAdamWFusedMatchesTorch(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512: Step takes libtorch's ops only")
	}
	shapes := [][]int64{{3*spanElems + 123}, {7, 5}, {6, 4}}
	build := func() ([]nn.Named, *AdamW) {
		var params []nn.Named
		for i, s := range shapes {
			p := ts.MustRandn(s, gotch.Float, gotch.CPU)
			if i == 2 { // a transposed view: not contiguous
				p = p.MustT(true)
			}
			params = append(params, nn.Named{Name: fmt.Sprint("p", i), Tensor: p.MustSetRequiresGrad(true, true)})
		}
		return params, NewAdamW(params, 0.01)
	}
	ManualSeed(11)
	fused, fo := build()
	ManualSeed(11)
	plain, po := build()
	for step := 0; step < 5; step++ {
		lr := 1e-3 * float64(step+1)
		for _, set := range [][]nn.Named{fused, plain} {
			ManualSeed(int64(100 + step)) // the same "loss" for both
			loss := ts.MustZeros([]int64{1}, gotch.Float, gotch.CPU)
			for _, p := range set {
				w := ts.MustRandn(p.Tensor.MustSize(), gotch.Float, gotch.CPU)
				term := p.Tensor.MustMul(w, false).MustSquare(true).MustSum(gotch.Float, true)
				loss = loss.MustAdd(term, true)
				w.MustDrop()
				term.MustDrop()
			}
			loss.MustBackward()
			loss.MustDrop()
		}
		fo.Step(lr)
		noGrad(func() {
			for i, p := range po.params {
				g := p.Tensor.MustGrad(false)
				po.steps[i]++
				po.stepTorch(i, g, lr, po.stepSize(lr, po.steps[i]))
				g.MustDrop()
			}
		})
		ZeroGrad(fused)
		ZeroGrad(plain)
	}
	for i := range shapes {
		a := fused[i].Tensor.MustDetach(false).Float64Values(true)
		b := plain[i].Tensor.MustDetach(false).Float64Values(true)
		for j := range a {
			if d := math.Abs(a[j] - b[j]); d > 1e-6*math.Max(1, math.Abs(b[j])) {
				t.Fatalf("parameter %d [%d]: fused %.9g, libtorch %.9g", i, j, a[j], b[j])
			}
		}
	}
	if !fusable(fused[0].Tensor, fo.expAvg[0], fo.expAvgSq[0]) || fusable(fused[2].Tensor) {
		t.Fatal("the contiguous parameter must take the fused kernel, the transposed one libtorch's ops")
	}
}
