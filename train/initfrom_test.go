package train

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/model/checkpoint"
)

// makeNewData is makeStore's task (the same class directions) with other
// images: noise drawn from noiseSeed, so fine-tuning data the source model
// never saw.
func makeNewData(t testing.TB, perClass int, noiseSeed uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "newdata")
	w, err := featstore.Create(dir, featstore.Meta{CLIPModel: "synthetic", EmbedDim: clipDim, ShardInputs: 64})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2)) // makeStore's centers come first from this stream
	centers := make([][]float32, len(classCaptions))
	for c := range centers {
		centers[c] = make([]float32, clipDim)
		for i := range centers[c] {
			centers[c][i] = float32(r.NormFloat64())
		}
	}
	noise := rand.New(rand.NewPCG(noiseSeed, 7))
	for k := 0; k < perClass; k++ {
		for c := range classCaptions {
			emb := make([]float32, clipDim)
			for i := range emb {
				emb[i] = centers[c][i] + 0.05*float32(noise.NormFloat64())
			}
			cp := featstore.Caption{ImageID: fmt.Sprintf("new%d_%d", c, k), Caption: classCaptions[c], Split: "train"}
			if err := w.Add(emb, []featstore.Caption{cp}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// firstLoss trains one epoch with a metrics line per step and returns the
// first logged loss: the starting model's loss on the first batch.
func firstLoss(t *testing.T, c Config) float64 {
	t.Helper()
	c.Epochs, c.LogEvery, c.SampleCaptions, c.ValSplit = 1, 1, 0, ""
	tr := newTrainer(t, c)
	runTrainer(t, tr)
	recs, err := ReadMetrics(filepath.Join(tr.RunDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || recs[0].Type != "train" || recs[0].Step != 1 || recs[0].Loss == nil {
		t.Fatalf("first metrics record %+v, want step 1's train loss", recs)
	}
	return *recs[0].Loss
}

// Fine-tuning from a trained model: it goes through the official format
// (export, then import as `clipcap import --from official` does) into a
// model directory, and fine-tuning that directory on new images starts with
// a loss far below a fresh model's on the same data; init_from naming the
// source run directory (its latest checkpoint) starts from the same weights.
func TestInitFromFineTunes(t *testing.T) {
	src := tinyConfig(makeStore(t, 6), t.TempDir())
	src.Epochs, src.Dropout, src.SampleCaptions, src.Prefix = 20, "0", 0, "source"
	srcRun := newTrainer(t, src)
	runTrainer(t, srcRun)

	ckpt, err := LatestCheckpoint(srcRun.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	pt := filepath.Join(t.TempDir(), "coco_weights.pt")
	if err := checkpoint.ExportOfficial(srcRun.Model, pt); err != nil {
		t.Fatal(err)
	}
	g := srcRun.Model.Cfg.GPT2
	imported, err := checkpoint.LoadOfficial(pt, checkpoint.OfficialOptions{GPT2: &g}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	modelDir := filepath.Join(t.TempDir(), "imported")
	if err := checkpoint.Save(modelDir, imported, checkpoint.NewDirConfig(imported, "synthetic"), ""); err != nil {
		t.Fatal(err)
	}

	data := makeNewData(t, 2, 99)
	fresh := tinyConfig(data, t.TempDir())
	fresh.Dropout = "0"
	freshLoss := firstLoss(t, fresh)

	ft := fresh
	ft.OutDir, ft.InitFrom, ft.GPT2Random = t.TempDir(), modelDir, false
	ftLoss := firstLoss(t, ft)
	t.Logf("first logged loss on new data: fresh %.4f, init_from %.4f", freshLoss, ftLoss)
	if !(ftLoss < freshLoss/10) {
		t.Errorf("init_from first loss %.4f, want below a tenth of a fresh model's %.4f", ftLoss, freshLoss)
	}

	fromRun := fresh
	fromRun.OutDir, fromRun.InitFrom, fromRun.GPT2Random = t.TempDir(), srcRun.RunDir, false
	if l := firstLoss(t, fromRun); l != ftLoss {
		t.Errorf("init_from the run dir (%s) starts at loss %v, from the imported copy at %v", ckpt, l, ftLoss)
	}
}

// Saved model directory of a fresh transformer model (epochs: 0 saves the
// initialized model) with GPT-2 frozen or not.
func sourceModel(t *testing.T, store string) string {
	t.Helper()
	c := tinyConfig(store, t.TempDir())
	c.MappingType, c.PrefixLengthClip, c.NumLayers, c.Epochs, c.Prefix = "transformer", 3, 2, 0, "src"
	tr := newTrainer(t, c)
	runTrainer(t, tr)
	dir, err := LatestCheckpoint(tr.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// only_prefix with init_from: GPT-2 stays bit-identical to the source
// model's, the mapper trains, and the model keys came from the source
// (the config left them at their defaults, which differ).
func TestInitFromOnlyPrefixFreezesGPT2(t *testing.T) {
	store := makeStore(t, 2)
	dir := sourceModel(t, store)
	srcModel, _, err := checkpoint.Load(dir, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(store, t.TempDir())
	c.InitFrom, c.GPT2Random, c.OnlyPrefix, c.Epochs, c.SampleCaptions = dir, false, true, 1, 1
	tr := newTrainer(t, c)
	if tr.Cfg.MappingType != "transformer" || tr.Cfg.PrefixLengthClip != 3 || tr.Cfg.NumLayers != 2 {
		t.Fatalf("resolved config: mapping_type %q, prefix_length_clip %d, num_layers %d; want the source's transformer, 3, 2",
			tr.Cfg.MappingType, tr.Cfg.PrefixLengthClip, tr.Cfg.NumLayers)
	}
	runTrainer(t, tr)
	after := paramValues(tr)
	gptSame, mapperChanged := 0, 0
	for _, p := range srcModel.Store.All() {
		before := p.Tensor.MustDetach(false).Float64Values(true)
		same := equalF64(before, after[p.Name])
		switch {
		case strings.HasPrefix(p.Name, "gpt."):
			if !same {
				t.Errorf("frozen %s changed", p.Name)
			}
			gptSame++
		case !same:
			mapperChanged++
		}
	}
	if gptSame == 0 || mapperChanged == 0 {
		t.Errorf("%d GPT-2 parameters compared, %d mapper parameters changed", gptSame, mapperChanged)
	}
}

// Keys the model decides are errors naming the key when set to something
// else; set to the model's value, or left alone, they are fine.
func TestInitFromConflictsNameTheKey(t *testing.T) {
	store := makeStore(t, 2)
	dir := sourceModel(t, store)
	base := fmt.Sprintf("data: %s\nout_dir: %s\ninit_from: %s\ntokenizer: bytelevel\nbs: 8\nprogress: false\n", store, t.TempDir(), dir)
	cases := []struct {
		sets []string
		key  string // "" = no error
	}{
		{[]string{"prefix_length=7"}, "prefix_length"},
		{[]string{"mapping_type=mlp"}, "mapping_type"},
		{[]string{"prefix_length_clip=5"}, "prefix_length_clip"},
		{[]string{"num_layers=3"}, "num_layers"},
		{[]string{"normalize_prefix=true"}, "normalize_prefix"},
		{[]string{"gpt2_random=true"}, "gpt2_random"},
		{[]string{"gpt2_config=gpt2:n_embd=64,n_layer=2,n_head=4,n_positions=64,vocab_size=257"}, "gpt2_config"},
		{[]string{"gpt2=/weights/of/another/gpt2"}, "gpt2"},
		{[]string{"gpt2=gpt2-medium"}, "gpt2"},
		// The model's own values, and the config's (default) prefix_length 10 left unset.
		{[]string{"prefix_length=4", "mapping_type=transformer", "prefix_length_clip=3", "num_layers=2",
			"gpt2_config=gpt2:n_embd=32,n_layer=2,n_head=4,n_positions=64,vocab_size=257"}, ""},
		{nil, ""},
	}
	for _, cs := range cases {
		c, err := LoadConfig(writeYAML(t, base), cs.sets)
		if err != nil {
			t.Fatal(err)
		}
		c.OutDir = t.TempDir()
		tr, err := New(c, testLog{t})
		if cs.key == "" {
			if err != nil {
				t.Errorf("sets %v: %v", cs.sets, err)
			} else {
				if tr.Cfg.PrefixLength != 4 || tr.Model.PrefixLength() != 4 {
					t.Errorf("sets %v: prefix_length %d / model %d, want the source's 4", cs.sets, tr.Cfg.PrefixLength, tr.Model.PrefixLength())
				}
				tr.Close()
			}
			continue
		}
		if err == nil {
			tr.Close()
			t.Errorf("sets %v: no error", cs.sets)
		} else if !strings.HasPrefix(err.Error(), cs.key+":") {
			t.Errorf("sets %v: error %q does not start with the key %q", cs.sets, err, cs.key)
		}
	}

	// A store of another width, and a directory that holds no model.
	wide := filepath.Join(t.TempDir(), "wide")
	w, err := featstore.Create(wide, featstore.Meta{CLIPModel: "synthetic", EmbedDim: 8, ShardInputs: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		if err := w.Add(make([]float32, 8), []featstore.Caption{{ImageID: fmt.Sprint(i), Caption: "a cat.", Split: "train"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ data, from, want string }{
		{wide, dir, "16-wide CLIP embeddings but data"},
		{store, t.TempDir(), "neither a model directory"},
		{store, filepath.Join(dir, "missing"), "init_from:"},
	} {
		c := tinyConfig(bad.data, t.TempDir())
		c.InitFrom, c.GPT2Random = bad.from, false
		if tr, err := New(c, testLog{t}); err == nil {
			tr.Close()
			t.Errorf("init_from %s over %s: no error", bad.from, bad.data)
		} else if !strings.Contains(err.Error(), bad.want) || !strings.HasPrefix(err.Error(), "init_from") {
			t.Errorf("init_from %s over %s: error %q, want init_from: ...%s", bad.from, bad.data, err, bad.want)
		}
	}
}
