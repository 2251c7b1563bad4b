package clip

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/nn"
)

// Fixtures from testdata/gen.py (see its docstring).

func readF32(t *testing.T, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func tensorValues(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	c := x.MustTo(gotch.CPU, false).MustContiguous(true)
	defer c.MustDrop()
	vals := make([]float32, c.Numel())
	if err := c.CopyData(vals, uint(len(vals))); err != nil {
		t.Fatal(err)
	}
	return vals
}

// assertClose checks max|got-want| <= tol * max|want|.
func assertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxDiff, maxAbs float64
	for i := range got {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
	}
	if maxAbs == 0 || maxDiff > tol*maxAbs {
		t.Fatalf("%s: max |diff| %.3g vs max |want| %.3g (tolerance %.0e relative)", what, maxDiff, maxAbs, tol)
	}
	t.Logf("%s: max |diff| %.3g, relative %.3g", what, maxDiff, maxDiff/maxAbs)
}

type fixture struct {
	name  string // file stem of the inputs and outputs
	heads int64  // gen.py's head count (0: as inferred)
	cfg   Config
}

var fixtures = []fixture{
	{"vit", 2, Config{Kind: ViT, Width: 64, Layers: 2, PatchSize: 8, InputResolution: 32, EmbedDim: 16, Heads: 2}},
	{"rn", 0, Config{Kind: ResNet, Width: 4, ResLayers: [4]int64{2, 1, 1, 1}, InputResolution: 64, EmbedDim: 24, Heads: 2}},
}

func encodeFixture(t *testing.T, m *Model, f fixture) []float32 {
	t.Helper()
	n := f.cfg.InputResolution
	in := readF32(t, f.name+"_in.bin")
	x, err := ts.NewTensorFromData(in, []int64{int64(len(in)) / (3 * n * n), 3, n, n})
	if err != nil {
		t.Fatal(err)
	}
	defer x.MustDrop()
	y, err := m.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	defer y.MustDrop()
	if got := y.MustSize(); got[1] != f.cfg.EmbedDim {
		t.Fatalf("embedding shape %v, want [B, %d]", got, f.cfg.EmbedDim)
	}
	return tensorValues(t, y)
}

func TestParityWithPyTorch(t *testing.T) {
	files := map[string][]string{
		"vit": {"vit.pt", "vit.safetensors", "vit_hf.safetensors"},
		"rn":  {"rn.pt", "rn.safetensors"},
	}
	for _, f := range fixtures {
		want := readF32(t, f.name+"_out.bin")
		for _, file := range files[f.name] {
			t.Run(file, func(t *testing.T) {
				m, cfg, err := LoadWith(filepath.Join("testdata", file), gotch.CPU, Options{Heads: f.heads})
				if err != nil {
					t.Fatal(err)
				}
				if cfg != f.cfg || m.Config != f.cfg {
					t.Fatalf("config %+v, want %+v", cfg, f.cfg)
				}
				assertClose(t, file, encodeFixture(t, m, f), want, 1e-4)
			})
		}
	}
}

// The inferred head count follows build_model: width/64 for ViT.
func TestLoadInfersHeads(t *testing.T) {
	_, cfg, err := Load(filepath.Join("testdata", "vit.pt"), gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Heads != 1 {
		t.Fatalf("heads %d, want 64/64 = 1", cfg.Heads)
	}
}

// convert(Double) goes through the same casts as Half on CUDA (converted
// weights, float32 LayerNorm/BatchNorm, float32 output).
func TestConvertedDtypeMatches(t *testing.T) {
	for _, f := range fixtures {
		m, _, err := LoadWith(filepath.Join("testdata", f.name+".safetensors"), gotch.CPU, Options{Heads: f.heads})
		if err != nil {
			t.Fatal(err)
		}
		m.convert(gotch.Double)
		if m.DType() != gotch.Double {
			t.Fatalf("dtype %v after convert", m.DType())
		}
		assertClose(t, f.name+" double", encodeFixture(t, m, f), readF32(t, f.name+"_out.bin"), 1e-4)
	}
}

func TestHalfNeedsCUDA(t *testing.T) {
	_, _, err := LoadWith(filepath.Join("testdata", "rn.safetensors"), gotch.CPU, Options{Half: true})
	if err == nil || !strings.Contains(err.Error(), "CUDA") {
		t.Fatalf("got %v, want an error saying --half needs CUDA", err)
	}
}

func TestEncodeRejectsBadInput(t *testing.T) {
	m, _, err := Load(filepath.Join("testdata", "rn.safetensors"), gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range [][]int64{{1, 3, 32, 32}, {3, 64, 64}, {1, 1, 64, 64}} {
		x := ts.MustZeros(shape, gotch.Float, gotch.CPU)
		if y, err := m.Encode(x); err == nil {
			y.MustDrop()
			t.Errorf("shape %v: no error", shape)
		}
		x.MustDrop()
	}
	x := ts.MustZeros([]int64{1, 3, 64, 64}, gotch.Int64, gotch.CPU)
	defer x.MustDrop()
	if _, err := m.Encode(x); err == nil {
		t.Error("int64 images: no error")
	}
}

// Encode frees every intermediate: the live tensor count is unchanged
// after many batches once the outputs are dropped.
func TestEncodeFreesIntermediates(t *testing.T) {
	for _, f := range fixtures {
		m, _, err := LoadWith(filepath.Join("testdata", f.name+".safetensors"), gotch.CPU, Options{Heads: f.heads})
		if err != nil {
			t.Fatal(err)
		}
		n := f.cfg.InputResolution
		x := ts.MustZeros([]int64{2, 3, n, n}, gotch.Float, gotch.CPU)
		y, _ := m.Encode(x) // warm up lazily created state
		y.MustDrop()
		runtime.GC()
		runtime.GC()
		before := len(ts.ExistingTensors)
		for i := 0; i < 5; i++ {
			y, err := m.Encode(x)
			if err != nil {
				t.Fatal(err)
			}
			y.MustDrop()
		}
		if after := len(ts.ExistingTensors); after > before {
			t.Errorf("%s: %d live tensors after 5 batches, %d before", f.name, after, before)
		}
		x.MustDrop()
	}
}

// InferConfig recovers every OpenAI architecture from the parameter shapes
// our own modules create under OpenAI's names.
func TestInferConfigRoundTrip(t *testing.T) {
	cfgs := []Config{
		fixtures[0].cfg, fixtures[1].cfg,
		{Kind: ResNet, Width: 8, ResLayers: [4]int64{1, 3, 2, 1}, InputResolution: 96, EmbedDim: 12, Heads: 4},
	}
	for _, name := range []string{"ViT-B/32", "ViT-L/14@336px", "RN50", "RN50x4"} {
		c, err := KnownConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, c)
	}
	for _, c := range cfgs {
		store := nn.NewStore(gotch.CPU)
		if _, err := newModel(store.Root().Sub("visual"), gotch.CPU, c, false); err != nil {
			t.Fatal(err)
		}
		shapes := map[string][]int64{"text_projection": {512, 77}}
		for _, p := range store.All() {
			shapes[p.Name] = p.Tensor.MustSize()
		}
		got, err := InferConfig(shapes)
		if err != nil {
			t.Fatal(err)
		}
		want := c
		if c.Kind == ViT {
			want.Heads = c.Width / 64
		} else {
			want.Heads = c.Width * 32 / 64
		}
		if got != want {
			t.Errorf("inferred %+v, want %+v", got, want)
		}
	}
	if _, err := KnownConfig("ViT-H/99"); err == nil {
		t.Error("unknown model name: no error")
	}
}

func TestInferConfigErrors(t *testing.T) {
	cases := map[string]map[string][]int64{
		"not CLIP":    {"foo": {1}},
		"bad grid":    {"visual.proj": {64, 16}, "visual.conv1.weight": {64, 3, 8, 8}, "visual.positional_embedding": {18, 64}},
		"rank":        {"visual.proj": {64, 16}, "visual.conv1.weight": {64, 3, 8}, "visual.positional_embedding": {17, 64}},
		"no layer3":   {"visual.layer1.0.conv1.weight": {4, 4, 1, 1}, "visual.layer2.0.x": {1}, "visual.layer4.0.x": {1}},
		"no attnpool": {"visual.layer1.0.conv1.weight": {4, 4, 1, 1}, "visual.layer2.0.x": {1}, "visual.layer3.0.x": {1}, "visual.layer4.0.x": {1}},
		// Block names without the blocks' weights: the tower must not be
		// built (and allocated) from names alone.
		"tiny fake block": {"visual.proj": {64, 16}, "visual.conv1.weight": {64, 3, 8, 8}, "visual.positional_embedding": {17, 64},
			"visual.transformer.resblocks.0.attn.in_proj_weight": {192, 64}, "visual.transformer.resblocks.1.attn.in_proj_weight": {1}},
		"block gap": {"visual.proj": {64, 16}, "visual.conv1.weight": {64, 3, 8, 8}, "visual.positional_embedding": {17, 64},
			"visual.transformer.resblocks.0.attn.in_proj_weight": {192, 64}, "visual.transformer.resblocks.99999.attn.in_proj_weight": {192, 64}},
		"resnet block gap": {"visual.layer1.0.conv1.weight": {4, 4, 1, 1}, "visual.layer1.777.bn1.weight": {1}, "visual.layer2.0.conv1.weight": {4, 4, 1, 1},
			"visual.layer3.0.conv1.weight": {4, 4, 1, 1}, "visual.layer4.0.conv1.weight": {4, 4, 1, 1},
			"visual.attnpool.positional_embedding": {5, 128}, "visual.attnpool.c_proj.weight": {16, 128}},
	}
	for name, shapes := range cases {
		if c, err := InferConfig(shapes); err == nil {
			t.Errorf("%s: no error (config %+v)", name, c)
		}
	}
	bad := []Config{
		{Kind: ViT, Width: 64, Layers: 2, PatchSize: 7, InputResolution: 32, EmbedDim: 16, Heads: 1},
		{Kind: ViT, Width: 64, Layers: 2, PatchSize: 8, InputResolution: 32, EmbedDim: 16, Heads: 0},
		{Kind: ResNet, Width: 4, ResLayers: [4]int64{1, 0, 1, 1}, InputResolution: 64, EmbedDim: 8, Heads: 2},
		{Kind: "mlp", Width: 4, InputResolution: 64, EmbedDim: 8},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("config %+v: no error", c)
		}
	}
}
