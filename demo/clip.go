package demo

import (
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
	"github.com/clipcap/clipcap/model/weights"
)

// RandomCLIPConfig is the demo's image tower when no pretrained CLIP is in
// the cache: a small ModifiedResNet (CLIP's architecture and parameter names);
// its random convolutional features keep colour, count, shape and position
// linearly readable (a random ViT of this size lost shape and position).
var RandomCLIPConfig = clip.Config{Kind: clip.ResNet, Width: 16, ResLayers: [4]int64{1, 1, 1, 1}, InputResolution: 64, EmbedDim: 128, Heads: 8}

// WriteRandomCLIP saves a seeded random image tower as safetensors that
// clip.Load reads like any OpenAI-named checkpoint.
func WriteRandomCLIP(path string, seed int64) error {
	torchrt.ManualSeed(seed)
	store := nn.NewStore(gotch.CPU)
	if _, err := clip.New(store.Root().Sub("visual"), gotch.CPU, RandomCLIPConfig); err != nil {
		return err
	}
	out := map[string]weights.RawTensor{}
	for _, p := range store.All() {
		rt, err := weights.FromTorch(p.Tensor)
		if err != nil {
			return err
		}
		out[p.Name] = rt
	}
	return weights.WriteSafetensors(path, out, map[string]string{"note": "seeded random CLIP ViT for the clipcap demo"})
}
