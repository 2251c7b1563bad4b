package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/nn"
)

func TestPrecisionConfig(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string // "" = valid
	}{
		{[]string{"precision=bf16"}, ""},
		{[]string{"precision=fp32"}, ""},
		{[]string{"precision=fp16", "device=cuda"}, ""},
		{[]string{"precision=fp16"}, "precision: fp16 needs device cuda"},
		{[]string{"precision=int8"}, `precision: "int8" is not`},
	} {
		_, err := LoadConfig(writeYAML(t, "data: s\ndevice: cpu\n"), c.sets)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("sets %v: error %v, want %q", c.sets, err, c.want)
		}
	}
}

// setGrads gives each parameter the gradient vals[i] (as backward of
// Σ p·vals[i] would).
func setGrads(t *testing.T, params []nn.Named, vals [][]float32) {
	t.Helper()
	for i, p := range params {
		c := ts.MustOfSlice(vals[i])
		l := p.Tensor.MustMul(c, false).MustSum(gotch.Float, true)
		l.MustBackward()
		l.MustDrop()
		c.MustDrop()
	}
}

func gradValues(p nn.Named) []float64 {
	g := p.Tensor.MustGrad(false)
	return g.Float64Values(true)
}

// The loss scaler with fake gradients: a step with inf or NaN is refused
// and halves the scale; finite gradients are divided by the scale exactly;
// growthInterval good steps in a row double it.
func TestLossScaler(t *testing.T) {
	store := nn.NewStore(gotch.CPU)
	a := store.Root().Param("a", nn.Const{Value: 1}, 2)
	b := store.Root().Param("b", nn.Const{Value: 1}, 1)
	params := []nn.Named{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}}
	s := newLossScaler(0, 0)
	if s.scale != 65536 {
		t.Fatalf("initial scale %g, want 2^16", s.scale)
	}
	s.scale, s.growthInterval = 8, 2

	for _, bad := range []float32{float32(math.Inf(1)), float32(math.NaN())} {
		setGrads(t, params, [][]float32{{1, 2}, {bad}})
		if s.unscale(params) {
			t.Errorf("gradient %v: step allowed", bad)
		}
		ZeroGrad(params)
	}
	if s.scale != 2 || s.good != 0 || s.skipped != 2 {
		t.Errorf("after two bad steps: scale %g, good %d, skipped %d; want 2, 0, 2", s.scale, s.good, s.skipped)
	}
	setGrads(t, params, [][]float32{{2, 6}, {-1}})
	if !s.unscale(params) {
		t.Fatal("finite gradients refused")
	}
	if ga, gb := gradValues(params[0]), gradValues(params[1]); ga[0] != 1 || ga[1] != 3 || gb[0] != -0.5 {
		t.Errorf("unscaled gradients %v %v, want [1 3] [-0.5]", ga, gb)
	}
	if s.scale != 2 || s.good != 1 {
		t.Errorf("after one good step: scale %g, good %d", s.scale, s.good)
	}
	ZeroGrad(params)
	setGrads(t, params, [][]float32{{2, 6}, {-1}})
	s.unscale(params)
	if s.scale != 4 || s.good != 0 {
		t.Errorf("after growthInterval good steps: scale %g, good %d; want 4, 0", s.scale, s.good)
	}
	var nilScaler *lossScaler
	if !nilScaler.unscale(params) || nilScaler.factor() != 1 {
		t.Error("a nil scaler (fp32, bf16) must let every step through unchanged")
	}
}

// Loss scaling in the trainer, on CPU in fp32 (fp16 itself needs CUDA):
// scaling by a power of two is exact, so 6 scaled steps give bit-identical
// parameters to unscaled ones; a scale that overflows the loss makes the
// step's gradients inf or NaN, and that step leaves parameters and optimizer
// moments untouched while the scale halves.
func TestLossScalingInTrainer(t *testing.T) {
	store := makeStore(t, 2)
	run := func(scaler *lossScaler, steps int) *Trainer {
		c := tinyConfig(store, t.TempDir())
		c.Epochs, c.SampleCaptions = 1, 0
		tr := newTrainer(t, c)
		tr.scaler = scaler
		if err := tr.run(t.Context(), steps); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	plain := paramValues(run(nil, 6))
	scaled := run(newLossScaler(0, 0), 6)
	for name, want := range plain {
		if !equalF64(want, paramValues(scaled)[name]) {
			t.Errorf("%s: 6 steps with loss scale 2^16 differ from unscaled ones", name)
		}
	}

	// 2^1000 is inf in fp32: the scaled loss and every gradient overflow.
	huge := newLossScaler(math.Ldexp(1, 1000), 0)
	tr := run(huge, 0)
	before := paramValues(tr)
	moments, _, err := tr.Opt.state()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.run(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if huge.skipped != 1 || huge.scale != math.Ldexp(1, 999) {
		t.Fatalf("overflowing step: skipped %d, scale %g; want 1 and 2^999", huge.skipped, huge.scale)
	}
	for name, want := range before {
		if !equalF64(want, paramValues(tr)[name]) {
			t.Errorf("%s changed in a skipped step", name)
		}
	}
	after, steps, _ := tr.Opt.state()
	for name, m := range moments {
		if string(m.Data) != string(after[name].Data) {
			t.Errorf("optimizer moment %s changed in a skipped step", name)
		}
	}
	for name, n := range steps {
		if n != 0 {
			t.Errorf("optimizer step count of %s is %d after a skipped step", name, n)
		}
	}
	if tr.st.Step != 1 {
		t.Errorf("trainer step %d after a skipped step, want 1 (the schedule moves on, as GradScaler's users' do)", tr.st.Step)
	}
}

// precision: bf16 learns the synthetic task as fp32 does, and its
// checkpoints hold fp32 weights.
func TestBF16Trains(t *testing.T) {
	c := tinyConfig(makeStore(t, 6), t.TempDir())
	c.Epochs, c.BS, c.Dropout, c.Precision, c.SampleCaptions = 20, 8, "0", "bf16", 0
	tr := newTrainer(t, c)
	if tr.Model.Store.Autocast() != gotch.BFloat16 {
		t.Fatalf("model autocast %v, want BFloat16", tr.Model.Store.Autocast())
	}
	before, after := trainedValLoss(t, tr)
	t.Logf("bf16 val loss %.4f -> %.4f", before, after)
	if !(after < before/10 && after < 0.3) {
		t.Errorf("bf16 val loss %.4f -> %.4f: want below a tenth of the start and 0.3", before, after)
	}
	dir, err := LatestCheckpoint(tr.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tensorfile.OpenSafetensors(filepath.Join(dir, checkpoint.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range f.Names() {
		if dt, _, _ := f.Info(name); dt != tensorfile.F32 {
			t.Errorf("checkpoint tensor %s is %s, want F32", name, dt)
		}
	}
	for _, p := range tr.Model.Store.All() {
		if p.Tensor.DType() != gotch.Float {
			t.Errorf("parameter %s is %v after bf16 training, want fp32", p.Name, p.Tensor.DType())
		}
	}
}
