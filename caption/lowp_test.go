package caption

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/nn"
)

// An int8 export of a model directory captions exactly as the fp32
// directory quantized at load, without converting anything at load; its
// precision is the directory's default; fp32 loads dequantize it (said in
// the note) and bf16 is refused. The CLIP tower follows into bf16 unless
// the directory pins it to fp32.
func TestExportedInt8DirectoryCaptions(t *testing.T) {
	dir, _ := tinyModelDir(t)
	out := filepath.Join(t.TempDir(), "int8")
	var log bytes.Buffer
	if err := Export(context.Background(), dir, "", out, "int8", &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "int8") {
		t.Errorf("export log %q", log.String())
	}

	before := nn.LowPConversions()
	ref, err := Load(dir, Options{Device: gotch.CPU, Precision: "int8"})
	if err != nil {
		t.Fatal(err)
	}
	if nn.LowPConversions() == before {
		t.Fatal("quantizing at load was not counted: the no-conversion check below would prove nothing")
	}
	before = nn.LowPConversions()
	c, err := Load(out, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	if n := nn.LowPConversions() - before; n != 0 {
		t.Errorf("loading the int8 directory converted %d matrices", n)
	}
	if c.Precision != nn.Int8 || !strings.Contains(c.PrecisionNote, "no conversion") {
		t.Errorf("int8 directory loads at %s, note %q", c.Precision, c.PrecisionNote)
	}
	if c.CLIP == nil || c.CLIP.Precision() != nn.BF16 || !strings.Contains(c.PrecisionNote, "CLIP computes in bf16") {
		t.Errorf("CLIP tower not in bf16 with int8 (note %q)", c.PrecisionNote)
	}
	emb := [][]float32{make([]float32, 128), make([]float32, 128)}
	for i := range emb[0] {
		emb[0][i] = float32(i%7) / 7
		emb[1][i] = -float32(i%5) / 5
	}
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 12}
	want, err := ref.FromEmbeddings(emb, opt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.FromEmbeddings(emb, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if !equal(got[i].Tokens, want[i].Tokens) || got[i].Score != want[i].Score {
			t.Errorf("caption %d: %v (%g), quantize-at-load %v (%g)", i, got[i].Tokens, got[i].Score, want[i].Tokens, want[i].Score)
		}
	}

	f, err := Load(out, Options{Device: gotch.CPU, Precision: "fp32"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Precision != nn.FP32 || f.Model.GPT.Head != nil || !strings.Contains(f.PrecisionNote, "dequantized") || f.CLIP.Precision() != nn.FP32 {
		t.Errorf("fp32 load of the int8 directory: %s, head %v, note %q", f.Precision, f.Model.GPT.Head != nil, f.PrecisionNote)
	}
	if _, err := Load(out, Options{Device: gotch.CPU, Precision: "bf16"}); err == nil || !strings.Contains(err.Error(), "stored as int8") {
		t.Errorf("bf16 load of the int8 directory: %v", err)
	}
	if err := Export(context.Background(), dir, "official", filepath.Join(t.TempDir(), "x.pt"), "int8", &log); err == nil || !strings.Contains(err.Error(), "--format dir") {
		t.Errorf("--format official --precision int8: %v", err)
	}

	// clip.precision: fp32 pins the tower; an explicit option overrides it.
	cfg, err := checkpoint.ReadDirConfig(out)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CLIP.Precision = "fp32"
	if err := checkpoint.WriteDirConfig(out, cfg); err != nil {
		t.Fatal(err)
	}
	for opt, want := range map[string]nn.Precision{"": nn.FP32, "bf16": nn.BF16} {
		c, err := Load(out, Options{Device: gotch.CPU, CLIPPrecision: opt})
		if err != nil {
			t.Fatal(err)
		}
		if c.CLIP.Precision() != want || c.Precision != nn.Int8 {
			t.Errorf("clip.precision fp32, option %q: CLIP %s, model %s", opt, c.CLIP.Precision(), c.Precision)
		}
	}
}
