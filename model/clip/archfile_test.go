package clip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// Fixtures from testdata/gen_arch.py (see its docstring): towers whose head
// count and activation only a config file can tell.

var (
	heads4Fixture = fixture{"arch/heads4", 4, Config{Kind: ViT, Width: 64, Layers: 2, PatchSize: 8, InputResolution: 32, EmbedDim: 16, Heads: 4}}
	geluFixture   = fixture{"arch/gelu", 4, Config{Kind: ViT, Width: 64, Layers: 2, PatchSize: 8, InputResolution: 32, EmbedDim: 16, Heads: 4, Act: GELU, MLPWidth: 96}}
)

func loadFixture(t *testing.T, path string, opt Options) (*Model, Config) {
	t.Helper()
	m, cfg, err := LoadWith(filepath.Join("testdata", path), gotch.CPU, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s; %s", path, cfg.Describe(), m.ArchSource)
	return m, cfg
}

// A Hugging Face CLIP directory with 4 heads on width 64 (build_model would
// infer 1) gives the PyTorch embeddings, the same as the OpenAI-format
// weights of the same tower told its head count; without it the
// OpenAI-format file falls back to width/64 and says so.
func TestHFDirHeadsMatchOpenAIFormat(t *testing.T) {
	want := readF32(t, "arch/heads4_out.bin")
	hf, cfg := loadFixture(t, "arch/hf_heads4/model.safetensors", Options{})
	if cfg != heads4Fixture.cfg {
		t.Fatalf("config %+v, want %+v", cfg, heads4Fixture.cfg)
	}
	if !strings.Contains(hf.ArchSource, "hf_heads4/config.json") {
		t.Errorf("ArchSource %q does not name the config.json it used", hf.ArchSource)
	}
	got := encodeFixture(t, hf, heads4Fixture)
	assertClose(t, "HF dir", got, want, 1e-4)

	oa, _ := loadFixture(t, "arch/heads4.safetensors", Options{Heads: 4})
	assertClose(t, "OpenAI format, 4 heads", encodeFixture(t, oa, heads4Fixture), got, 1e-5)

	bare, cfg := loadFixture(t, "arch/heads4.safetensors", Options{})
	if cfg.Heads != 1 || !strings.Contains(bare.ArchSource, "heads = width/64") || !strings.Contains(bare.ArchSource, "no config.json") {
		t.Fatalf("bare file: heads %d, source %q; want build_model's 1 head, said so", cfg.Heads, bare.ArchSource)
	}
	if d := maxRel(encodeFixture(t, bare, fixture{cfg: cfg, name: "arch/heads4"}), want); d < 1e-2 {
		t.Fatalf("1 head gives the 4-head embeddings (max relative diff %.3g): the fixture does not exercise the head count", d)
	}
}

// Exact-GELU towers with a 1.5 MLP ratio, as OpenCLIP and LAION's HF
// conversions describe them, match PyTorch from either layout.
func TestGELUTowersFromConfigFiles(t *testing.T) {
	want := readF32(t, "arch/gelu_out.bin")
	for _, p := range []string{"arch/hf_gelu/model.safetensors", "arch/openclip_gelu/open_clip_model.safetensors"} {
		m, cfg := loadFixture(t, p, Options{})
		if cfg != geluFixture.cfg {
			t.Fatalf("%s: config %+v, want %+v", p, cfg, geluFixture.cfg)
		}
		assertClose(t, p, encodeFixture(t, m, geluFixture), want, 1e-4)
	}
	// The same weights with QuickGELU (the options override the file) differ.
	m, _ := loadFixture(t, "arch/openclip_gelu/open_clip_model.safetensors", Options{Act: QuickGELU})
	if d := maxRel(encodeFixture(t, m, geluFixture), want); d < 1e-3 {
		t.Fatalf("QuickGELU gives the GELU embeddings (max relative diff %.3g)", d)
	}
}

// A config that contradicts the weights, or names what the tower cannot
// compute, is an error naming the file and the field; a config.json that
// is not a CLIP config is skipped and the source says so.
func TestArchFileErrors(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "arch", "hf_gelu", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, "model.safetensors")
	os.WriteFile(weights, data, 0o644)
	base := `"model_type": "clip_vision_model", "hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8, "projection_dim": 16`
	for _, tc := range []struct{ json, want string }{
		{`{` + base + `, "hidden_act": "gelu"}`, ""},
		{`{` + base + `, "hidden_act": "silu"}`, `hidden_act "silu" is not supported`},
		{`{` + strings.Replace(base, `"num_hidden_layers": 2`, `"num_hidden_layers": 3`, 1) + `}`, "layers is 3 but the weights have 2"},
		{`{` + strings.Replace(base, `"image_size": 32`, `"image_size": 224`, 1) + `}`, "image size is 224 but the weights have 32"},
		{`{` + strings.Replace(base, `"projection_dim": 16`, `"projection_dim": 512`, 1) + `}`, "projection_dim is 512"},
		{`{` + strings.Replace(base, `"num_attention_heads": 4`, `"num_attention_heads": 5`, 1) + `}`, "5 heads cannot split width 64"},
		{`{` + base + `, "layer_norm_eps": 1e-6}`, "layer_norm_eps"},
		{`{"model_type": "clip", "vision_config": {"hidden_size": 64}}`, "image size is 224"}, // HF's defaults fill the rest
		{`{not json`, "config.json"},
	} {
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.json), 0o644)
		_, _, err := Load(weights, gotch.CPU)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.json, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "config.json")):
			t.Errorf("%s: error %v, want one naming config.json and containing %q", tc.json, err, tc.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "gpt2", "n_embd": 768}`), 0o644)
	m, cfg, err := Load(weights, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Heads != 1 || !strings.Contains(m.ArchSource, `not a CLIP config (model_type "gpt2")`) {
		t.Fatalf("GPT-2 config.json: heads %d, source %q", cfg.Heads, m.ArchSource)
	}
	// NoConfigFile: the caller states the architecture.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "clip_vision_model", "hidden_act": "silu"}`), 0o644)
	if _, cfg, err = LoadWith(weights, gotch.CPU, Options{NoConfigFile: true, Heads: 4, Act: GELU}); err != nil || cfg != geluFixture.cfg {
		t.Fatalf("NoConfigFile: %+v, %v", cfg, err)
	}
	// OpenCLIP configs: a timm tower is refused; a ResNet config gives the
	// attention pool's heads from head_width.
	os.Remove(filepath.Join(dir, "config.json"))
	oc := filepath.Join(dir, OpenCLIPConfigFile)
	os.WriteFile(oc, []byte(`{"model_cfg": {"vision_cfg": {"timm_model_name": "convnext_base"}}}`), 0o644)
	if _, _, err := Load(weights, gotch.CPU); err == nil || !strings.Contains(err.Error(), "timm") {
		t.Fatalf("timm OpenCLIP config: %v", err)
	}
	a, _, err := parseOpenCLIPConfig(oc, []byte(`{"model_cfg": {"embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": [3, 4, 6, 3], "width": 64, "head_width": 32}}}`))
	if err != nil || a.kind != ResNet || a.heads != 64 || a.resLayers != [4]int64{3, 4, 6, 3} {
		t.Fatalf("OpenCLIP ResNet config: %+v, %v", a, err)
	}
}

func maxRel(got, want []float32) float64 {
	var d, w float64
	for i := range got {
		d = max(d, abs64(float64(got[i])-float64(want[i])))
		w = max(w, abs64(float64(want[i])))
	}
	return d / w
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// On CUDA, Half computes as clip.load does there (convert_weights, fp16
// activations, LayerNorm in fp32). Against gen_arch.py's PyTorch fp16 output
// (written when the generator ran on a CUDA machine) the bound is 5e-3 of
// the largest value; against the fp32 output, fp16 rounding allows 2e-2.
func TestHalfMatchesPyTorchFP16(t *testing.T) {
	if !gotch.CUDA.IsAvailable() {
		t.Skip("needs CUDA: libtorch has no fp16 convolution or matmul kernels on the CPU, and clip.load only uses fp16 on CUDA")
	}
	m, _, err := LoadWith(filepath.Join("testdata", "arch", "heads4.safetensors"), gotch.CudaBuilder(0), Options{Heads: 4, Half: true})
	if err != nil {
		t.Fatal(err)
	}
	got := encodeFixture(t, m, heads4Fixture)
	if _, err := os.Stat(filepath.Join("testdata", "arch", "heads4_fp16_out.bin")); err == nil {
		assertClose(t, "fp16 vs PyTorch fp16", got, readF32(t, "arch/heads4_fp16_out.bin"), 5e-3)
	} else {
		t.Log("no heads4_fp16_out.bin (gen_arch.py ran without CUDA): comparing with the fp32 reference")
	}
	assertClose(t, "fp16 vs PyTorch fp32", got, readF32(t, "arch/heads4_out.bin"), 2e-2)
}
