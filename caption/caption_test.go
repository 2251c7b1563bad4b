package caption

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/demo"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// tinyModelDir writes a model directory with a tiny random ClipCap model,
// the toy GPT-2 vocabulary and a small random CLIP tower.
func tinyModelDir(t *testing.T) (string, *clipcap.Model) {
	t.Helper()
	torchrt.ManualSeed(3)
	g := gpt2.Config{VocabSize: 317, NPositions: 128, NEmbd: 32, NLayer: 2, NHead: 4, Activation: "gelu_new", LayerNormEps: 1e-5, InitializerRange: 0.3}
	cfg := clipcap.Config{GPT2: g, Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: demo.RandomCLIPConfig.EmbedDim, EmbedDim: 32, PrefixLength: 4}}
	m, err := clipcap.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dc := checkpoint.NewDirConfig(m, "demo-random-vit")
	dc.CLIP.Weights = "clip.safetensors"
	if err := checkpoint.Save(dir, m, dc, "../data/tokenizer/testdata/toy"); err != nil {
		t.Fatal(err)
	}
	if err := demo.WriteRandomCLIP(filepath.Join(dir, "clip.safetensors"), 1); err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func TestCaptionerMatchesGenerate(t *testing.T) {
	dir, m := tinyModelDir(t)
	c, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	if c.CLIP == nil || c.Pre.NPx != 64 {
		t.Fatalf("CLIP encoder not loaded from the model directory")
	}
	emb := [][]float32{make([]float32, 128), make([]float32, 128)}
	for i := range emb[0] {
		emb[0][i] = float32(i%7) / 7
		emb[1][i] = -float32(i%5) / 5
	}
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 12}
	caps, err := c.FromEmbeddings(emb, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The same through the model directly.
	x := ts.MustOfSlice(append(append([]float32{}, emb[0]...), emb[1]...)).MustView([]int64{2, 128}, true)
	var prefix *ts.Tensor
	torchrt.NoGrad(func() { prefix, err = m.Prefix(x, false) })
	if err != nil {
		t.Fatal(err)
	}
	want, err := generate.Generate(m.GPT, prefix, opt.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	for i := range caps {
		if len(caps[i].Tokens) == 0 || !equal(caps[i].Tokens, want[i].Tokens) {
			t.Fatalf("caption %d tokens %v, want %v", i, caps[i].Tokens, want[i].Tokens)
		}
		text, _ := c.Tok.Decode(want[i].Tokens)
		if text = tokenizer.CleanUpSpaces(text); caps[i].Text != text {
			t.Fatalf("caption %d text %q, want %q", i, caps[i].Text, text)
		}
	}

	// Images go through the same path: preprocess → CLIP → caption.
	imgDir := t.TempDir()
	if err := demo.Generate(imgDir, demo.Sizes{Train: 2}, 64, 1); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(imgDir, "images", "*.png"))
	var imgs []*imageproc.Image
	var px [][]float32
	for _, f := range files {
		im, err := imageproc.DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, im)
		p, err := c.Pre.File(f)
		if err != nil {
			t.Fatal(err)
		}
		px = append(px, p)
	}
	a, err := c.FromImages(imgs, opt)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Encode(px)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.FromEmbeddings(e, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !equal(a[i].Tokens, b[i].Tokens) {
			t.Fatalf("image %d: FromImages %v, Encode+FromEmbeddings %v", i, a[i].Tokens, b[i].Tokens)
		}
	}
}

func TestCaptionerBadInput(t *testing.T) {
	dir, _ := tinyModelDir(t)
	c, err := Load(dir, Options{Device: gotch.CPU, CLIP: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FromEmbeddings([][]float32{make([]float32, 127)}, generate.Options{}); err == nil || !strings.Contains(err.Error(), "width 127") {
		t.Fatalf("wrong width: %v", err)
	}
	if _, err := c.FromPixels([][]float32{make([]float32, 3*64*64)}, generate.Options{}); err == nil || !strings.Contains(err.Error(), "no CLIP encoder") {
		t.Fatalf("no encoder: %v", err)
	}
	os.Remove(filepath.Join(dir, checkpoint.WeightsFile))
	if _, err := Load(dir, Options{Device: gotch.CPU}); err == nil || !strings.Contains(err.Error(), checkpoint.WeightsFile) {
		t.Fatalf("missing weights: %v", err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Captions get Hugging Face decode's clean-up unless RawText is set; the
// tokens are the same either way.
func TestCaptionTextCleanUp(t *testing.T) {
	dir, _ := tinyModelDir(t)
	c, err := Load(dir, Options{Device: gotch.CPU, CLIP: "-"})
	if err != nil {
		t.Fatal(err)
	}
	raw := " a man 's dog , on a skateboard ."
	ids, err := c.Tok.Encode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Text(ids); err != nil || got != " a man's dog, on a skateboard." {
		t.Fatalf("clean text %q, %v", got, err)
	}
	emb := [][]float32{make([]float32, 128)}
	for i := range emb[0] {
		emb[0][i] = float32(i%11) / 11
	}
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 12}
	clean, err := c.FromEmbeddings(emb, opt)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Load(dir, Options{Device: gotch.CPU, CLIP: "-", RawText: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := rc.Text(ids); got != raw {
		t.Fatalf("RawText: %q, want %q", got, raw)
	}
	rawCaps, err := rc.FromEmbeddings(emb, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(clean[0].Tokens, rawCaps[0].Tokens) || clean[0].Text != tokenizer.CleanUpSpaces(rawCaps[0].Text) {
		t.Fatalf("clean %+v, raw %+v", clean[0], rawCaps[0])
	}
}

// With no decoding flags, captions follow the model directory's generation
// section (what import --from official sets to predict.py's greedy);
// flags override it field by field.
func TestDecodingDefaultsFromModelDir(t *testing.T) {
	dir, _ := tinyModelDir(t)
	cfg, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Generation = generate.Options{Strategy: generate.Greedy, MaxTokens: 3, StopTokens: []int{}}
	if err := checkpoint.WriteDirConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir, Options{Device: gotch.CPU, CLIP: "-"})
	if err != nil {
		t.Fatal(err)
	}
	d := c.DecodeOptions(generate.Options{})
	if d.Strategy != generate.Greedy || d.MaxTokens != 3 || len(d.StopTokens) != 0 {
		t.Fatalf("defaults %+v, want the directory's greedy, 3 tokens, no stop", d)
	}
	if o := c.DecodeOptions(generate.Options{Strategy: generate.Beam, MaxTokens: 5}); o.Strategy != generate.Beam || o.BeamSize != 5 || o.MaxTokens != 5 {
		t.Fatalf("flags over defaults: %+v", o)
	}
	emb := [][]float32{make([]float32, 128)}
	for i := range emb[0] {
		emb[0][i] = float32(i%9) / 9
	}
	caps, err := c.FromEmbeddings(emb, generate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(caps[0].Tokens) != 3 {
		t.Fatalf("%d tokens, want the directory's max_tokens 3 with no stop token", len(caps[0].Tokens))
	}
}
