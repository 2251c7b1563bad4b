package demo

import (
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
	"github.com/clipcap/clipcap/model/weights"
)

// RandomCLIPConfig is the demo's image tower when no pretrained CLIP is in
// the cache: a small ViT (CLIP's architecture, OpenAI's parameter names).
var RandomCLIPConfig = clip.Config{Kind: clip.ViT, Width: 128, Layers: 2, PatchSize: 8, InputResolution: 64, EmbedDim: 128, Heads: 2}

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
