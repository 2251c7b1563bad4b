package caption

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// A Hugging Face or OpenCLIP directory names its weights file; a directory missing its config or holding
// something else is an error that says what is wanted.
func TestResolveCLIPDirectories(t *testing.T) {
	ctx := context.Background()
	arch := filepath.Join(clipTestdata, "arch")
	for dir, want := range map[string]string{"hf_heads4": "model.safetensors", "openclip_gelu": "open_clip_model.safetensors"} {
		d := filepath.Join(arch, dir)
		w := filepath.Join(d, want)
		if got, err := ResolveCLIP(ctx, d, t.TempDir(), false); err != nil || got != w {
			t.Errorf("ResolveCLIP(%s) = %q, %v; want %q", d, got, err, w)
		}
	}
	noConfig := t.TempDir()
	os.WriteFile(filepath.Join(noConfig, "model.safetensors"), []byte("x"), 0o644)
	if _, err := ResolveCLIP(ctx, noConfig, "", false); err == nil || !strings.Contains(err.Error(), "model.safetensors without config.json") {
		t.Errorf("weights without config.json: %v", err)
	}
	if _, err := ResolveCLIP(ctx, t.TempDir(), "", false); err == nil || !strings.Contains(err.Error(), "not a CLIP one") {
		t.Errorf("empty directory: %v", err)
	}
}

// A model directory that carries a tower imported from a Hugging Face
// directory keeps its head count in config.yaml (the directory holds no
// config.json), so caption encodes as the Hugging Face tower does.
func TestModelDirKeepsCLIPHeads(t *testing.T) {
	src := filepath.Join(clipTestdata, "arch", "hf_heads4", "model.safetensors")
	ref, rcfg, err := clip.Load(src, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	g := gpt2.Config{VocabSize: 317, NPositions: 64, NEmbd: 32, NLayer: 1, NHead: 4, Activation: "gelu_new", LayerNormEps: 1e-5, InitializerRange: 0.3}
	m, err := clipcap.New(clipcap.Config{GPT2: g, Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: rcfg.EmbedDim, EmbedDim: 32, PrefixLength: 2}}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dc := checkpoint.NewDirConfig(m, "hf_heads4")
	dc.CLIP.Weights, dc.CLIP.Heads = "clip.safetensors", rcfg.Heads
	if err := checkpoint.Save(dir, m, dc, "../data/tokenizer/testdata/toy"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(src)
	os.WriteFile(filepath.Join(dir, "clip.safetensors"), data, 0o644)
	c, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	if c.CLIP.Config != rcfg || rcfg.Heads != 4 {
		t.Fatalf("model directory's tower %+v, want %+v (4 heads)", c.CLIP.Config, rcfg)
	}
	px := make([]float32, 3*32*32)
	for i := range px {
		px[i] = float32(i%13)/6 - 1
	}
	got, err := c.Encode([][]float32{px})
	if err != nil {
		t.Fatal(err)
	}
	rc := &Captioner{CLIP: ref, Pre: c.Pre, Device: gotch.CPU}
	want, err := rc.Encode([][]float32{px})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want[0] {
		if got[0][i] != want[0][i] {
			t.Fatalf("embedding %d: %g, the Hugging Face directory gives %g", i, got[0][i], want[0][i])
		}
	}
}
