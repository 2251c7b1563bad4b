package demo

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
)

// RandomCLIPConfig is the demo's image tower when no pretrained CLIP is in
// the cache: a small ModifiedResNet (CLIP's architecture and parameter names);
// its random convolutional features keep colour, count, shape and position
// linearly readable (a random ViT of this size lost shape and position).
var RandomCLIPConfig = clip.Config{Kind: clip.ResNet, Width: 16, ResLayers: [4]int64{1, 1, 1, 1}, InputResolution: 64, EmbedDim: 128, Heads: 8}

// WriteRandomCLIP saves a seeded random image tower as safetensors that
// clip.Load reads like any OpenAI-named checkpoint.
//
// Random towers map every image close to one common direction: what tells
// images apart is a small fraction of each embedding. Pretrained CLIP has
// that too, but a mapper learns to use it over a long training; the demo
// trains for minutes. So the tower is calibrated on a few images of the
// demo's kind (from another seed than the data): the final projection
// (attnpool.c_proj) is rescaled so each output dimension has mean 0 and
// standard deviation 1. That is an affine change of the last layer, so the
// tower keeps CLIP's architecture and parameter names.
func WriteRandomCLIP(path string, seed int64) error {
	torchrt.ManualSeed(seed)
	store := nn.NewStore(gotch.CPU)
	m, err := clip.New(store.Root().Sub("visual"), gotch.CPU, RandomCLIPConfig)
	if err != nil {
		return err
	}
	if err := calibrate(store, m, seed); err != nil {
		return fmt.Errorf("calibrating the demo CLIP: %w", err)
	}
	out, err := store.StateDict()
	if err != nil {
		return err
	}
	return tensorfile.WriteSafetensors(path, out, map[string]string{"note": "seeded random CLIP ResNet for the clipcap demo, last layer standardized"})
}

func calibrate(store *nn.Store, m *clip.Model, seed int64) error {
	dir, err := os.MkdirTemp("", "clipcap-calibrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const n = 192
	if err := Generate(dir, Sizes{Train: n}, int(RandomCLIPConfig.InputResolution), seed+7919); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "images", "*.png"))
	if err != nil {
		return err
	}
	pre := imageproc.NewPreprocessor(int(RandomCLIPConfig.InputResolution))
	var flat []float32
	for _, f := range files {
		px, err := pre.File(f)
		if err != nil {
			return err
		}
		flat = append(flat, px...)
	}
	r := RandomCLIPConfig.InputResolution
	x, err := ts.NewTensorFromData(flat, []int64{int64(len(files)), 3, r, r})
	if err != nil {
		return err
	}
	defer x.MustDrop()
	var calErr error
	torchrt.NoGrad(func() {
		emb, err := m.Encode(x)
		if err != nil {
			calErr = err
			return
		}
		defer emb.MustDrop()
		mean := emb.MustMeanDim([]int64{0}, false, gotch.Float, false)
		std := emb.MustStdDim([]int64{0}, true, false, false).MustAddScalar(ts.FloatScalar(1e-6), true)
		defer mean.MustDrop()
		defer std.MustDrop()
		w, _ := store.Get("visual.attnpool.c_proj.weight") // [D, C]
		b, _ := store.Get("visual.attnpool.c_proj.bias")   // [D]
		col := std.MustUnsqueeze(1, false)
		nw := w.MustDiv(col, false)
		col.MustDrop()
		nb := b.MustSub(mean, false).MustDiv(std, true)
		if calErr = store.Assign("visual.attnpool.c_proj.weight", nw); calErr == nil {
			calErr = store.Assign("visual.attnpool.c_proj.bias", nb)
		}
		nw.MustDrop()
		nb.MustDrop()
	})
	return calErr
}
