package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipcap/clipcap/data/featstore"
)

// Synthetic task: the caption is a function of the embedding. Each image
// belongs to one of these classes; its embedding is the class's fixed random
// direction plus a little noise.
var classCaptions = []string{
	"a red cat.", "two dogs run.", "a blue car.", "green tree.",
	"the sun sets.", "a big ship.", "one old man.", "kids play.",
}

const clipDim = 16

// makeStore writes a feature store with perClass train images per class
// (two captions each, identical, so train and greedy targets agree) and one
// val image per class.
func makeStore(t testing.TB, perClass int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	w, err := featstore.Create(dir, featstore.Meta{CLIPModel: "synthetic", EmbedDim: clipDim, ShardInputs: 64})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	centers := make([][]float32, len(classCaptions))
	for c := range centers {
		centers[c] = make([]float32, clipDim)
		for i := range centers[c] {
			centers[c][i] = float32(r.NormFloat64())
		}
	}
	add := func(id string, c int, split string) {
		emb := make([]float32, clipDim)
		for i := range emb {
			emb[i] = centers[c][i] + 0.05*float32(r.NormFloat64())
		}
		caps := []featstore.Caption{{ImageID: id, Caption: classCaptions[c], Split: split}}
		if split == "train" {
			caps = append(caps, caps[0])
		}
		if err := w.Add(emb, caps); err != nil {
			t.Fatal(err)
		}
	}
	for k := 0; k < perClass; k++ {
		for c := range classCaptions {
			add(fmt.Sprintf("tr%d_%d", c, k), c, "train")
		}
	}
	for c := range classCaptions {
		add(fmt.Sprintf("val%d", c), c, "val")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyConfig is a small MLP run over store: GPT-2 with n_embd 32, 2 layers
// and the byte-level 257-token vocabulary.
func tinyConfig(store, out string) Config {
	c := Default()
	c.Data, c.OutDir, c.Prefix = store, out, "run"
	c.Epochs, c.BS, c.PrefixLength = 2, 8, 4
	c.GPT2, c.GPT2Random = "gpt2", true
	c.GPT2Config = "gpt2:n_embd=32,n_layer=2,n_head=4,n_positions=64,vocab_size=257"
	c.Tokenizer = "bytelevel"
	c.LR, c.WarmupSteps = 3e-3, 10
	c.LogEvery, c.ValBatches, c.SampleCaptions = 5, 0, 2
	c.Progress = false
	return c
}

func newTrainer(t testing.TB, c Config) *Trainer {
	t.Helper()
	tr, err := New(c, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// trainedValLoss is the validation loss before and after running tr.
func trainedValLoss(t testing.TB, tr *Trainer) (before, after float64) {
	t.Helper()
	before, err := tr.ValLoss()
	if err != nil {
		t.Fatal(err)
	}
	runTrainer(t, tr)
	if after, err = tr.ValLoss(); err != nil {
		t.Fatal(err)
	}
	return before, after
}

func runTrainer(t testing.TB, tr *Trainer) {
	t.Helper()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	if testing.Verbose() {
		os.Stderr.Write(p)
	}
	return len(p), nil
}

// paramValues copies every parameter to host memory.
func paramValues(tr *Trainer) map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range tr.Model.Store.All() {
		out[p.Name] = p.Tensor.MustDetach(false).Float64Values(true)
	}
	return out
}
