package checkpoint

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
)

func fixtureShapes(t *testing.T, kind string) map[string][]int64 {
	t.Helper()
	sh := map[string][]int64{}
	for n, rt := range readAll(t, filepath.Join(fixtures, "official_"+kind+".pt")) {
		sh[n] = rt.Shape
	}
	return sh
}

// Layer counts come from tensor names; a name alone must not make the model
// allocate millions of layers.
func TestInferOfficialBoundsLayerIndices(t *testing.T) {
	cases := []struct {
		kind, tensor string
	}{
		{"mlp", "gpt.transformer.h.99999999.ln_1.weight"},
		{"mlp", "gpt.transformer.h.3.ln_1.weight"}, // a gap: layers 0, 1, 3
		{"transformer", "clip_project.transformer.layers.4096.norm1.weight"},
	}
	for _, c := range cases {
		sh := fixtureShapes(t, c.kind)
		sh[c.tensor] = []int64{32}
		_, err := InferOfficial(sh, tinyOptions(t))
		if err == nil || !strings.Contains(err.Error(), c.tensor) || !strings.Contains(err.Error(), "layer") {
			t.Errorf("%s: error %v, want one naming %s", c.tensor, err, c.tensor)
		}
	}
	// Contiguous but absurd: 10000 layers each named by one tiny tensor.
	sh := fixtureShapes(t, "mlp")
	for i := 0; i < 10000; i++ {
		sh[fmt.Sprintf("gpt.transformer.h.%d.ln_1.weight", i)] = []int64{32}
	}
	if _, err := InferOfficial(sh, tinyOptions(t)); err == nil || !strings.Contains(err.Error(), "gpt.transformer.h.") {
		t.Errorf("10000 layers: %v", err)
	}
	// The configuration may not need more weights than the file holds:
	// every layer present by name, but only its layer norm has data.
	sh = fixtureShapes(t, "mlp")
	for i := 2; i < 40; i++ {
		sh[fmt.Sprintf("gpt.transformer.h.%d.ln_1.weight", i)] = []int64{32}
	}
	if _, err := InferOfficial(sh, tinyOptions(t)); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Errorf("40 layers named, 2 backed: %v", err)
	}
}

// The same through the loader, from a file: refused before the model is
// built, naming the file and the tensor.
func TestLoadOfficialRefusesHugeLayerIndex(t *testing.T) {
	sd := readAll(t, filepath.Join(fixtures, "official_mlp.pt"))
	name := "gpt.transformer.h.99999999.ln_1.weight"
	sd[name] = sd["gpt.transformer.h.0.ln_1.weight"]
	p := filepath.Join(t.TempDir(), "layers.pt")
	if err := tensorfile.WriteTorch(p, sd); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOfficial(p, tinyOptions(t), gotch.CPU)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v, want one naming %s and the file", err, name)
	}
}

// impliedParams must count exactly what the model allocates, or the check
// above would refuse good checkpoints.
func TestImpliedParamsMatchesTheModel(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		m := load(t, kind)
		n := m.Store.NumParams("")
		if got := impliedParams(m.Cfg); got != float64(n) {
			t.Errorf("%s: impliedParams %v, model has %d", kind, got, n)
		}
	}
}

// A model directory's config.yaml declares the sizes outright; they too are
// checked against what model.safetensors holds before anything is built.
func TestLoadRefusesConfigBiggerThanItsWeights(t *testing.T) {
	m := load(t, "mlp")
	dir := t.TempDir()
	if err := Save(dir, m, NewDirConfig(m, "ViT-B/32"), ""); err != nil {
		t.Fatal(err)
	}
	cfg, err := ReadDirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model.GPT2.NLayer = 40
	if err := WriteDirConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(dir, gotch.CPU)
	if err == nil || !strings.Contains(err.Error(), "holds") || !strings.Contains(err.Error(), WeightsFile) {
		t.Errorf("40 layers declared, 2 saved: %v", err)
	}
}
