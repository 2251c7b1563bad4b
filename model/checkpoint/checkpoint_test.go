package checkpoint

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/mapper"
)

// Fixtures come from model/clipcap/testdata/gen_reference.py.
const fixtures = "../clipcap/testdata"

func tinyOptions(t *testing.T) OfficialOptions {
	t.Helper()
	g, err := ReadGPT2Config(filepath.Join(fixtures, "gpt2_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return OfficialOptions{GPT2: &g}
}

func load(t *testing.T, kind string) *clipcap.Model {
	t.Helper()
	m, err := LoadOfficial(filepath.Join(fixtures, "official_"+kind+".pt"), tinyOptions(t), gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameParams(t *testing.T, a, b *clipcap.Model, prefix string) int {
	t.Helper()
	n := 0
	for _, p := range a.Store.All() {
		if !strings.HasPrefix(p.Name, prefix) {
			continue
		}
		q, ok := b.Store.Get(p.Name)
		if !ok {
			t.Fatalf("%s missing", p.Name)
		}
		if !p.Tensor.MustEqual(q, false) {
			t.Errorf("%s differs", p.Name)
		}
		n++
	}
	return n
}

func TestInferOfficialShapes(t *testing.T) {
	m := load(t, "transformer")
	c := m.Cfg.Mapper
	if c.Kind != mapper.Transformer || c.PrefixLength != 5 || c.ClipLength != 3 || c.NumLayers != 2 || c.ClipDim != 16 || c.EmbedDim != 32 {
		t.Fatalf("inferred %+v", c)
	}
	if !m.Cfg.FreezeGPT2 || m.Cfg.GPT2.NLayer != 2 || m.Cfg.GPT2.VocabSize != 96 || m.Cfg.GPT2.NPositions != 128 {
		t.Fatalf("inferred %+v", m.Cfg)
	}
	mlp := load(t, "mlp")
	if mlp.Cfg.Mapper.Kind != mapper.MLP || mlp.Cfg.Mapper.PrefixLength != 4 || mlp.Cfg.FreezeGPT2 {
		t.Fatalf("inferred %+v", mlp.Cfg)
	}
}

func TestLoadHFGPT2BothLayouts(t *testing.T) {
	ref := load(t, "mlp")
	for _, f := range []string{"hf_gpt2.safetensors", "hf_gpt2_bare.bin"} {
		m, err := clipcap.New(ref.Cfg, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		if err := LoadHFGPT2(m, filepath.Join(fixtures, f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if n := sameParams(t, ref, m, "gpt."); n < 20 {
			t.Fatalf("%s: only %d GPT-2 tensors compared", f, n)
		}
	}
}

func readAll(t *testing.T, path string) map[string]tensorfile.RawTensor {
	t.Helper()
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	out := map[string]tensorfile.RawTensor{}
	for _, n := range src.Names() {
		rt, err := src.Tensor(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = rt
	}
	return out
}

func TestOfficialRoundTrip(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		orig := filepath.Join(fixtures, "official_"+kind+".pt")
		m := load(t, kind)
		for _, ext := range []string{".pt", ".safetensors"} {
			out := filepath.Join(t.TempDir(), "export"+ext)
			if err := ExportOfficial(m, out); err != nil {
				t.Fatal(err)
			}
			a, b := readAll(t, orig), readAll(t, out)
			if len(a) != len(b) {
				t.Errorf("%s%s: %d tensors exported, original has %d", kind, ext, len(b), len(a))
			}
			for n, ra := range a {
				rb, ok := b[n]
				if !ok || !bytes.Equal(ra.Data, rb.Data) || ra.Dtype != rb.Dtype || len(ra.Shape) != len(rb.Shape) {
					t.Errorf("%s%s: tensor %s not identical after import → export", kind, ext, n)
				}
			}
			again, err := LoadOfficial(out, tinyOptions(t), gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			if n := sameParams(t, m, again, ""); n == 0 {
				t.Fatal("nothing compared")
			}
		}
	}
}

func TestModelDirRoundTrip(t *testing.T) {
	m := load(t, "transformer")
	dir := t.TempDir()
	if err := Save(dir, m, NewDirConfig(m, "ViT-B/32"), ""); err != nil {
		t.Fatal(err)
	}
	back, cfg, err := Load(dir, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CLIP.Name != "ViT-B/32" || cfg.Generation.BeamSize != 5 || back.Cfg != m.Cfg {
		t.Fatalf("config after round trip: %+v", cfg)
	}
	sameParams(t, m, back, "")

	// Unknown keys in config.yaml are errors naming the key.
	data, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	os.WriteFile(filepath.Join(dir, ConfigFile), append(data, []byte("beam_width: 3\n")...), 0o644)
	if _, _, err := Load(dir, gotch.CPU); err == nil || !strings.Contains(err.Error(), "beam_width") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestBadCheckpoints(t *testing.T) {
	dir := t.TempDir()
	orig, _ := os.ReadFile(filepath.Join(fixtures, "official_mlp.pt"))
	trunc := filepath.Join(dir, "trunc.pt")
	os.WriteFile(trunc, orig[:len(orig)/2], 0o644)
	if _, err := LoadOfficial(trunc, tinyOptions(t), gotch.CPU); err == nil || !strings.Contains(err.Error(), "trunc.pt") {
		t.Errorf("truncated checkpoint: %v", err)
	}
	if _, err := LoadOfficial(filepath.Join(fixtures, "hf_gpt2.safetensors"), tinyOptions(t), gotch.CPU); err == nil || !strings.Contains(err.Error(), "not an official ClipCap checkpoint") {
		t.Errorf("foreign checkpoint: %v", err)
	}
	// A tensor of the wrong shape is named.
	sd := readAll(t, filepath.Join(fixtures, "official_mlp.pt"))
	bad := sd["gpt.transformer.h.1.mlp.c_fc.weight"]
	bad.Shape = []int64{bad.Shape[1], bad.Shape[0]}
	sd["gpt.transformer.h.1.mlp.c_fc.weight"] = bad
	p := filepath.Join(dir, "shape.pt")
	if err := tensorfile.WriteTorch(p, sd); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOfficial(p, tinyOptions(t), gotch.CPU); err == nil || !strings.Contains(err.Error(), "h.1.mlp.c_fc.weight") {
		t.Errorf("shape mismatch: %v", err)
	}
	// A CLIP embedding of the wrong width is named as such.
	m := load(t, "mlp")
	x := ts.MustOnes([]int64{2, 15}, gotch.Float, gotch.CPU)
	if _, err := m.Prefix(x, false); err == nil || !strings.Contains(err.Error(), "[batch, 16]") {
		t.Errorf("wrong embedding width: %v", err)
	}
}
