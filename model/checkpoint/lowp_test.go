package checkpoint_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// lowpSource writes a small random fp32 model directory (a 64-wide,
// 2-layer GPT-2: every matrix's input width is a multiple of 16 and none
// is square but c_proj, which the layout check needs).
func lowpSource(t *testing.T) string {
	t.Helper()
	s := randmodel.Tiny()
	s.GPT2.NEmbd, s.GPT2.NHead = 64, 2
	dir := filepath.Join(t.TempDir(), "fp32")
	if err := randmodel.Write(dir, s); err != nil {
		t.Fatal(err)
	}
	return dir
}

// logits runs mapper + GPT-2 over two fixed CLIP embeddings plus three
// token positions and returns the logits as floats.
func logits(t *testing.T, m *clipcap.Model) []float32 {
	t.Helper()
	d := m.Cfg.Mapper.ClipDim
	vals := make([]float32, 2*d)
	for i := range vals {
		vals[i] = float32(math.Sin(float64(i)))
	}
	var out []float32
	torchrt.NoGrad(func() {
		x := ts.MustOfSlice(vals).MustView([]int64{2, d}, true)
		defer x.MustDrop()
		prefix, err := m.Prefix(x, false)
		if err != nil {
			t.Fatal(err)
		}
		tok := ts.MustOfSlice([]int64{5, 17, 99, 3, 200, 42}).MustView([]int64{2, 3}, true)
		emb := m.GPT.Embed(tok)
		seq := ts.MustCat([]*ts.Tensor{prefix, emb}, 1)
		h, err := m.GPT.Forward(seq, nil, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		l := m.GPT.Logits(h)
		for _, v := range l.Float64Values() {
			out = append(out, float32(v))
		}
		for _, z := range []*ts.Tensor{prefix, tok, emb, seq, h, l} {
			z.MustDrop()
		}
	})
	return out
}

func maxDiff(a, b []float32) (d, scale float64) {
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return d, scale
}

// lowBytes sums the bytes of the tensors in a model file whose names pass keep.
func lowBytes(t *testing.T, path string, keep func(string) bool) int64 {
	t.Helper()
	sf, err := tensorfile.OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	var n int64
	for _, name := range sf.Names() {
		if keep(name) {
			n += int64(len(sf.Bytes(name)))
		}
	}
	return n
}

// isMatrix names the GPT-2 Conv1D and mapper weights (and their scales).
func isMatrix(n string) bool {
	n = strings.TrimSuffix(n, checkpoint.ScaleSuffix)
	return strings.HasSuffix(n, "c_attn.weight") || strings.HasSuffix(n, "c_proj.weight") || strings.HasSuffix(n, "c_fc.weight") ||
		strings.HasPrefix(n, "clip_project.") && strings.HasSuffix(n, ".weight")
}

// An exported bf16 / int8 directory loads at its precision without
// converting anything (the conversion counter stays put) and computes the
// same logits as quantizing the fp32 directory at load; its matrices take
// a half / about a quarter of the fp32 bytes; fp32 loading gives the
// dequantized weights.
func TestExportPrecisionLoadsWithoutConversion(t *testing.T) {
	src := lowpSource(t)
	for _, p := range []nn.Precision{nn.BF16, nn.Int8} {
		ref, _, err := checkpoint.Load(src, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ref.GPT.SetPrecision(p); err != nil {
			t.Fatal(err)
		}
		if err := mapper.SetPrecision(ref.Mapper, p); err != nil {
			t.Fatal(err)
		}
		want := logits(t, ref)
		// fp32 computation keeps the LM head in wte (float32, stored so).
		ref.GPT.Head = nil
		wantF32Head := logits(t, ref)

		out := filepath.Join(t.TempDir(), string(p))
		if note, err := checkpoint.ExportDir(src, out, p); err != nil || note != "" {
			t.Fatalf("%s export: %v (note %q)", p, err, note)
		}
		before := nn.LowPConversions()
		m, cfg, stored, err := checkpoint.LoadStored(out, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if n := nn.LowPConversions() - before; n != 0 {
			t.Errorf("%s: loading the exported directory converted %d matrices", p, n)
		}
		if stored != p || cfg.WeightsPrecision != string(p) || cfg.Generation.Precision != string(p) {
			t.Errorf("%s: stored %s, config weights_precision %q, generation.precision %q", p, stored, cfg.WeightsPrecision, cfg.Generation.Precision)
		}
		if m.GPT.Head == nil || m.GPT.Blocks[0].Fc.Low == nil || m.GPT.Head.Prec != p {
			t.Fatalf("%s: stored matrices not held in low precision", p)
		}
		got := logits(t, m)
		if d, _ := maxDiff(got, want); d > 1e-6 {
			t.Errorf("%s: logits differ from quantize-at-load by %g", p, d)
		}

		// Size: bf16 exactly half the fp32 matrices; int8 a quarter plus
		// the scales (4 bytes per output of a 64- or 256-wide input).
		ratio := float64(lowBytes(t, filepath.Join(out, checkpoint.WeightsFile), isMatrix)) /
			float64(lowBytes(t, filepath.Join(src, checkpoint.WeightsFile), isMatrix))
		lo, hi := 0.5, 0.5
		if p == nn.Int8 {
			lo, hi = 0.25, 0.25+1.0/64
		}
		t.Logf("%s: matrices take %.3f of their fp32 bytes", p, ratio)
		if ratio < lo || ratio > hi {
			t.Errorf("%s: matrices take %.3f of their fp32 bytes, want %.3f..%.3f", p, ratio, lo, hi)
		}

		// fp32 from the low-precision directory: the dequantized weights,
		// which the kernels multiply with (with the LM head in wte, float32
		// in both). The packed kernels round activations to ~16 bits (each
		// product within 1e-4 of x·dequantized(W), model/nn's bound): the
		// logits agree to 1e-3 of the largest.
		f, _, err := checkpoint.Load(out, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if f.GPT.Head != nil || f.GPT.Blocks[0].Fc.Low != nil {
			t.Fatalf("%s: Load kept low-precision layers", p)
		}
		if d, scale := maxDiff(logits(t, f), wantF32Head); d > 1e-3*scale {
			t.Errorf("%s: fp32 load of the exported directory differs by %g (largest logit %g)", p, d, scale)
		}
	}
}

// Re-exporting: int8 → int8 is the same bytes, int8 → fp32 is allowed with
// a note, int8 → bf16 is refused, and export never overwrites a model.
func TestExportPrecisionChains(t *testing.T) {
	src := lowpSource(t)
	i8 := filepath.Join(t.TempDir(), "i8")
	if _, err := checkpoint.ExportDir(src, i8, nn.Int8); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again")
	if _, err := checkpoint.ExportDir(i8, again, nn.Int8); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(i8, checkpoint.WeightsFile))
	b, _ := os.ReadFile(filepath.Join(again, checkpoint.WeightsFile))
	if len(a) == 0 || string(a) != string(b) {
		t.Error("int8 → int8 export changed the weights file")
	}
	deq := filepath.Join(t.TempDir(), "deq")
	if note, err := checkpoint.ExportDir(i8, deq, nn.FP32); err != nil || !strings.Contains(note, "dequantized") {
		t.Errorf("int8 → fp32: %v, note %q", err, note)
	}
	if _, stored, err := loadStored(deq); err != nil || stored != nn.FP32 {
		t.Errorf("dequantized export loads as %s: %v", stored, err)
	}
	if cfg, err := checkpoint.ReadDirConfig(deq); err != nil || cfg.Generation.Precision != "" || cfg.WeightsPrecision != "" {
		t.Errorf("dequantized export's config keeps precision %q / weights %q (%v)", cfg.Generation.Precision, cfg.WeightsPrecision, err)
	}
	if _, err := checkpoint.ExportDir(i8, filepath.Join(t.TempDir(), "x"), nn.BF16); err == nil || !strings.Contains(err.Error(), "stores int8") {
		t.Errorf("int8 → bf16: %v", err)
	}
	for _, out := range []string{src, i8} {
		if _, err := checkpoint.ExportDir(src, out, nn.Int8); err == nil {
			t.Errorf("export over %s accepted", out)
		}
	}
	for _, f := range []string{checkpoint.VocabFile, checkpoint.MergesFile, randmodel.CLIPFile} {
		if _, err := os.Stat(filepath.Join(i8, f)); err != nil {
			t.Errorf("export did not copy %s: %v", f, err)
		}
	}
}

func loadStored(dir string) (*clipcap.Model, nn.Precision, error) {
	m, _, p, err := checkpoint.LoadStored(dir, gotch.CPU)
	return m, p, err
}

// A corrupt or mismatched int8 file fails to load with an error naming the
// tensor and the problem.
func TestLowPrecisionFileErrors(t *testing.T) {
	src := lowpSource(t)
	i8 := filepath.Join(t.TempDir(), "i8")
	if _, err := checkpoint.ExportDir(src, i8, nn.Int8); err != nil {
		t.Fatal(err)
	}
	const w = "gpt.transformer.h.1.mlp.c_fc.weight"
	cases := map[string]struct {
		edit func(map[string]tensorfile.RawTensor)
		want []string
	}{
		"truncated scale": {func(sd map[string]tensorfile.RawTensor) {
			s := sd[w+checkpoint.ScaleSuffix]
			s.Shape, s.Data = []int64{s.Shape[0] - 1}, s.Data[:len(s.Data)-4]
			sd[w+checkpoint.ScaleSuffix] = s
		}, []string{w, "scale"}},
		"missing scale": {func(sd map[string]tensorfile.RawTensor) { delete(sd, w+checkpoint.ScaleSuffix) }, []string{w, "no scale"}},
		"fp32 layout": {func(sd map[string]tensorfile.RawTensor) {
			x := sd[w]
			x.Shape = []int64{x.Shape[1], x.Shape[0]}
			sd[w] = x
		}, []string{w, "output-major"}},
		"mixed precisions": {func(sd map[string]tensorfile.RawTensor) {
			x := sd[w]
			vals := make([]float32, len(x.Data))
			b, _ := tensorfile.FromFloat32(tensorfile.BF16, vals)
			sd[w] = tensorfile.RawTensor{Dtype: tensorfile.BF16, Shape: x.Shape, Data: b}
			delete(sd, w+checkpoint.ScaleSuffix)
		}, []string{w, "one precision"}},
		"non-finite scale": {func(sd map[string]tensorfile.RawTensor) {
			s := sd[w+checkpoint.ScaleSuffix]
			d := append([]byte(nil), s.Data...)
			copy(d, []byte{0, 0, 0x80, 0x7f}) // +Inf
			sd[w+checkpoint.ScaleSuffix] = tensorfile.RawTensor{Dtype: s.Dtype, Shape: s.Shape, Data: d}
		}, []string{w, "scale 0 is +Inf"}},
		"head missing": {func(sd map[string]tensorfile.RawTensor) {
			delete(sd, checkpoint.HeadName)
			delete(sd, checkpoint.HeadName+checkpoint.ScaleSuffix)
		}, []string{checkpoint.HeadName}},
	}
	for name, tc := range cases {
		dir := filepath.Join(t.TempDir(), "bad")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{checkpoint.ConfigFile, checkpoint.VocabFile, checkpoint.MergesFile} {
			data, _ := os.ReadFile(filepath.Join(i8, f))
			os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		sf, err := tensorfile.OpenSafetensors(filepath.Join(i8, checkpoint.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		sd := map[string]tensorfile.RawTensor{}
		for _, n := range sf.Names() {
			rt, _ := sf.Tensor(n)
			sd[n] = rt
		}
		tc.edit(sd)
		err = tensorfile.WriteSafetensors(filepath.Join(dir, checkpoint.WeightsFile), sd, nil)
		sf.Close()
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = loadStored(dir)
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		for _, s := range tc.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", name, err, s)
			}
		}
	}

	// config.yaml and the weights must agree.
	cfg, err := checkpoint.ReadDirConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WeightsPrecision = "int8"
	if err := checkpoint.WriteDirConfig(src, cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadStored(src); err == nil || !strings.Contains(err.Error(), "weights_precision int8") {
		t.Errorf("config claiming int8 over fp32 weights: %v", err)
	}
}
