// Package clip implements the image towers of OpenAI's CLIP — the
// VisionTransformer (ViT-B/32 … ViT-L/14@336px) and the ModifiedResNet
// (RN50 … RN50x64) — on libtorch, in eval mode, under OpenAI's state-dict
// names ("visual.*"). Weights load from OpenAI's TorchScript releases,
// OpenAI-named state dicts (safetensors or torch.save) and Hugging Face
// CLIPVisionModelWithProjection safetensors.
package clip

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Kind of image tower.
type Kind string

const (
	ViT    Kind = "vit"
	ResNet Kind = "resnet"
)

// Config is the architecture of an image tower, as openai/CLIP's
// build_model infers it from the state dict.
type Config struct {
	Kind Kind
	// Width is vision_width: the transformer width (ViT) or the stem/first
	// stage width (ResNet, whose feature dimension is Width*32).
	Width int64
	// Layers is the number of transformer blocks (ViT); ResLayers the
	// Bottleneck count of each of the four stages (ResNet).
	Layers    int64
	ResLayers [4]int64
	// PatchSize of the ViT's patchifying convolution (0 for ResNet).
	PatchSize int64
	// InputResolution is n_px: images must be preprocessed to n×n.
	InputResolution int64
	// EmbedDim is the size of the output embedding.
	EmbedDim int64
	// Heads of the transformer blocks (ViT, Width/64) or of the attention
	// pool (ResNet, Width*32/64).
	Heads int64
	// Act is the ViT MLP's activation; "" means QuickGELU (OpenAI's).
	// OpenCLIP's and LAION's towers use exact GELU, which no tensor shape
	// reveals: it comes from a config file beside the weights.
	Act Activation
	// MLPWidth is the ViT MLP's hidden width; 0 means 4*Width (every
	// OpenAI tower; OpenCLIP's mlp_ratio can differ).
	MLPWidth int64
}

// Activation of a ViT MLP, under Hugging Face's hidden_act names.
type Activation string

const (
	QuickGELU Activation = "quick_gelu" // x * sigmoid(1.702 x), OpenAI's
	GELU      Activation = "gelu"       // exact (erf) GELU, OpenCLIP's nn.GELU
	GELUTanh  Activation = "gelu_tanh"  // tanh approximation (HF gelu_new / gelu_pytorch_tanh)
)

// activation is Act with its default filled in.
func (c Config) activation() Activation {
	if c.Act == "" {
		return QuickGELU
	}
	return c.Act
}

// mlpWidth is MLPWidth with its default filled in.
func (c Config) mlpWidth() int64 {
	if c.MLPWidth <= 0 {
		return 4 * c.Width
	}
	return c.MLPWidth
}

// Validate reports a configuration the model cannot be built from.
func (c Config) Validate() error {
	if c.Width <= 0 || c.EmbedDim <= 0 || c.InputResolution <= 0 {
		return fmt.Errorf("clip: config %+v: width, embed dim and input resolution must be positive", c)
	}
	switch c.Kind {
	case ViT:
		if c.Layers <= 0 || c.PatchSize <= 0 {
			return fmt.Errorf("clip: ViT config %+v: layers and patch size must be positive", c)
		}
		if c.InputResolution%c.PatchSize != 0 {
			return fmt.Errorf("clip: ViT input resolution %d is not a multiple of patch size %d", c.InputResolution, c.PatchSize)
		}
		if c.Heads <= 0 || c.Width%c.Heads != 0 {
			return fmt.Errorf("clip: ViT width %d cannot be split into %d heads", c.Width, c.Heads)
		}
		switch c.activation() {
		case QuickGELU, GELU, GELUTanh:
		default:
			return fmt.Errorf("clip: ViT activation %q is not supported (quick_gelu, gelu, gelu_tanh)", c.Act)
		}
		if c.MLPWidth < 0 {
			return fmt.Errorf("clip: ViT MLP width %d is negative", c.MLPWidth)
		}
	case ResNet:
		for i, n := range c.ResLayers {
			if n <= 0 {
				return fmt.Errorf("clip: ResNet stage %d has %d blocks", i+1, n)
			}
		}
		if c.InputResolution%32 != 0 {
			return fmt.Errorf("clip: ResNet input resolution %d is not a multiple of 32", c.InputResolution)
		}
		if c.Width%2 != 0 || c.Heads <= 0 || (c.Width*32)%c.Heads != 0 {
			return fmt.Errorf("clip: ResNet width %d with %d attention-pool heads is not a valid shape", c.Width, c.Heads)
		}
	default:
		return fmt.Errorf("clip: unknown tower kind %q", c.Kind)
	}
	return nil
}

// InferConfig derives the architecture from tensor shapes under OpenAI's
// names ("visual.*"; other names, e.g. the text tower's, are ignored), the
// way build_model does: a "visual.proj" means a ViT, else a ModifiedResNet.
// EmbedDim comes from the image tower itself (proj or attnpool.c_proj), so
// an image-only state dict is enough.
func InferConfig(shapes map[string][]int64) (Config, error) {
	get := func(name string, rank int) ([]int64, error) {
		s, ok := shapes[name]
		if !ok {
			return nil, fmt.Errorf("clip: no tensor %q (is this a CLIP image tower?)", name)
		}
		if len(s) != rank {
			return nil, fmt.Errorf("clip: tensor %q has shape %v, want rank %d", name, s, rank)
		}
		return s, nil
	}
	if _, vit := shapes["visual.proj"]; vit {
		conv, err := get("visual.conv1.weight", 4)
		if err != nil {
			return Config{}, err
		}
		pos, err := get("visual.positional_embedding", 2)
		if err != nil {
			return Config{}, err
		}
		proj, err := get("visual.proj", 2)
		if err != nil {
			return Config{}, err
		}
		var layers int64
		for n := range shapes {
			if strings.HasPrefix(n, "visual.") && strings.HasSuffix(n, ".attn.in_proj_weight") {
				layers++
			}
		}
		// Every counted block must be a real one of this width, numbered from
		// 0: a file of many tiny tensors under block names must not make the
		// tower allocate width-sized blocks for each (it would hold none of
		// their weights).
		w := conv[0]
		for i := int64(0); i < layers; i++ {
			n := fmt.Sprintf("visual.transformer.resblocks.%d.attn.in_proj_weight", i)
			s, ok := shapes[n]
			if !ok {
				return Config{}, fmt.Errorf("clip: %d attention blocks but no %q: block indices must run from 0 without gaps", layers, n)
			}
			if len(s) != 2 || s[0] != 3*w || s[1] != w {
				return Config{}, fmt.Errorf("clip: tensor %q has shape %v, want [%d %d] for width %d", n, s, 3*w, w, w)
			}
		}
		grid, err := squareRoot(pos[0]-1, "visual.positional_embedding")
		if err != nil {
			return Config{}, err
		}
		c := Config{Kind: ViT, Width: conv[0], Layers: layers, PatchSize: conv[3],
			InputResolution: conv[3] * grid, EmbedDim: proj[1], Heads: conv[0] / 64}
		if fc, ok := shapes["visual.transformer.resblocks.0.mlp.c_fc.weight"]; ok && len(fc) == 2 && fc[0] != 4*c.Width {
			c.MLPWidth = fc[0]
		}
		return c, nil
	}
	var c Config
	c.Kind = ResNet
	for b := 0; b < 4; b++ {
		// Blocks are the distinct third name components of visual.layer<b>.<i>.*.
		prefix := "visual.layer" + strconv.Itoa(b+1) + "."
		seen := map[string]bool{}
		for n := range shapes {
			if rest, ok := strings.CutPrefix(n, prefix); ok {
				seen[strings.SplitN(rest, ".", 2)[0]] = true
			}
		}
		c.ResLayers[b] = int64(len(seen))
		if len(seen) == 0 {
			return Config{}, fmt.Errorf("clip: no visual.proj (ViT) and no %s* tensors (ResNet): not a CLIP image tower", prefix)
		}
		// As for ViT blocks: numbered from 0, each with its convolution.
		for i := 0; i < len(seen); i++ {
			n := prefix + strconv.Itoa(i) + ".conv1.weight"
			if s, ok := shapes[n]; !ok || len(s) != 4 {
				return Config{}, fmt.Errorf("clip: %d blocks under %s* but tensor %q is missing or not 4-D: block indices must run from 0 without gaps", len(seen), prefix, n)
			}
		}
	}
	conv, err := get("visual.layer1.0.conv1.weight", 4)
	if err != nil {
		return Config{}, err
	}
	pos, err := get("visual.attnpool.positional_embedding", 2)
	if err != nil {
		return Config{}, err
	}
	cproj, err := get("visual.attnpool.c_proj.weight", 2)
	if err != nil {
		return Config{}, err
	}
	out, err := squareRoot(pos[0]-1, "visual.attnpool.positional_embedding")
	if err != nil {
		return Config{}, err
	}
	c.Width = conv[0]
	c.InputResolution = out * 32
	c.EmbedDim = cproj[0]
	c.Heads = c.Width * 32 / 64
	return c, nil
}

// squareRoot is build_model's round(sqrt(n)) with its assert that the
// result squares back to n.
func squareRoot(n int64, name string) (int64, error) {
	r := int64(math.Round(math.Sqrt(float64(n))))
	if n <= 0 || r*r != n {
		return 0, fmt.Errorf("clip: %s has %d+1 rows, not a square grid plus a class token", name, n)
	}
	return r, nil
}

// Known OpenAI release configurations, for benchmarks and random-weight models.
var known = map[string]Config{
	"RN50":           {Kind: ResNet, Width: 64, ResLayers: [4]int64{3, 4, 6, 3}, InputResolution: 224, EmbedDim: 1024, Heads: 32},
	"RN101":          {Kind: ResNet, Width: 64, ResLayers: [4]int64{3, 4, 23, 3}, InputResolution: 224, EmbedDim: 512, Heads: 32},
	"RN50x4":         {Kind: ResNet, Width: 80, ResLayers: [4]int64{4, 6, 10, 6}, InputResolution: 288, EmbedDim: 640, Heads: 40},
	"RN50x16":        {Kind: ResNet, Width: 96, ResLayers: [4]int64{6, 8, 18, 8}, InputResolution: 384, EmbedDim: 768, Heads: 48},
	"RN50x64":        {Kind: ResNet, Width: 128, ResLayers: [4]int64{3, 15, 36, 10}, InputResolution: 448, EmbedDim: 1024, Heads: 64},
	"ViT-B/32":       {Kind: ViT, Width: 768, Layers: 12, PatchSize: 32, InputResolution: 224, EmbedDim: 512, Heads: 12},
	"ViT-B/16":       {Kind: ViT, Width: 768, Layers: 12, PatchSize: 16, InputResolution: 224, EmbedDim: 512, Heads: 12},
	"ViT-L/14":       {Kind: ViT, Width: 1024, Layers: 24, PatchSize: 14, InputResolution: 224, EmbedDim: 768, Heads: 16},
	"ViT-L/14@336px": {Kind: ViT, Width: 1024, Layers: 24, PatchSize: 14, InputResolution: 336, EmbedDim: 768, Heads: 16},
}

// KnownConfig returns the architecture of an OpenAI release by name
// ("ViT-B/32", "RN50x4", ...).
func KnownConfig(name string) (Config, error) {
	c, ok := known[name]
	if !ok {
		return Config{}, fmt.Errorf("clip: unknown model %q; known: %s", name, strings.Join(KnownNames(), ", "))
	}
	return c, nil
}

// KnownNames lists the OpenAI release names KnownConfig accepts, sorted.
func KnownNames() []string {
	out := make([]string, 0, len(known))
	for n := range known {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
