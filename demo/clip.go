package demo

import (
	"os"
	"path/filepath"

	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/model/clip"
)

// RandomCLIPConfig is the demo's image tower when no pretrained CLIP is in
// the cache: a small ModifiedResNet (CLIP's architecture and parameter names);
// its random convolutional features keep colour, count, shape and position
// linearly readable (a random ViT of this size lost shape and position).
var RandomCLIPConfig = clip.Config{Kind: clip.ResNet, Width: 16, ResLayers: [4]int64{1, 1, 1, 1}, InputResolution: 64, EmbedDim: 128, Heads: 8}

// WriteRandomCLIP saves the seeded random image tower as safetensors that
// clip.Load reads like any OpenAI-named checkpoint, calibrated on demo-style
// images of another seed than the data (see randmodel.WriteCalibratedCLIP).
//
// Random towers map every image close to one common direction: what tells
// images apart is a small fraction of each embedding. Pretrained CLIP has
// that too, but a mapper learns to use it over a long training; the demo
// trains for minutes. So the tower is calibrated on a few images of the
// demo's kind.
func WriteRandomCLIP(path string, seed int64) error {
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
	return randmodel.WriteCalibratedCLIP(path, RandomCLIPConfig, seed, files,
		map[string]string{"note": "seeded random CLIP ResNet for the clipcap demo, last layer standardized"})
}
