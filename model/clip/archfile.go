package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// What a config file beside the weights says about the tower. Tensor shapes
// give widths, depth, patch and image size; they never give the head count
// or the activation, which is why OpenAI's build_model assumes width/64 and
// QuickGELU — right for OpenAI's releases, wrong for e.g. OpenCLIP's
// ViT-H/14 (width 1280, 16 heads of 80, exact GELU).

// HFConfigFile and OpenCLIPConfigFile are the file names looked for beside
// a weights file: a Hugging Face CLIPConfig / CLIPVisionConfig, and
// OpenCLIP's hub config.
const (
	HFConfigFile       = "config.json"
	OpenCLIPConfigFile = "open_clip_config.json"
)

// archFile is an architecture description read from a config file. Zero
// fields are unknown (checked against nothing).
type archFile struct {
	path                                           string
	kind                                           Kind
	width, layers, heads, patch, image, embed, mlp int64
	resLayers                                      [4]int64
	act                                            Activation
	embedFrom                                      string // the field embed came from, for messages
	openCLIP                                       bool
}

// findArchFile looks for a config beside the weights: config.json first
// (open_clip_config.json first for OpenCLIP's open_clip_* weight files).
// A file that is not a CLIP config is skipped, and note says so.
func findArchFile(weights string) (a *archFile, note string, err error) {
	dir := filepath.Dir(weights)
	names := []string{HFConfigFile, OpenCLIPConfigFile}
	if strings.HasPrefix(filepath.Base(weights), "open_clip") {
		names = []string{OpenCLIPConfigFile, HFConfigFile}
	}
	var notes []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", p, err)
		}
		var a *archFile
		var skip string
		if n == OpenCLIPConfigFile {
			a, skip, err = parseOpenCLIPConfig(p, b)
		} else {
			a, skip, err = parseHFConfig(p, b)
		}
		if err != nil {
			return nil, "", err
		}
		if a != nil {
			return a, "", nil
		}
		notes = append(notes, skip)
	}
	return nil, strings.Join(notes, "; "), nil
}

// hfVision holds the CLIPVisionConfig fields this tower depends on;
// pointers tell absent keys (HF's defaults apply) from given ones.
type hfVision struct {
	HiddenSize        *int64   `json:"hidden_size"`
	IntermediateSize  *int64   `json:"intermediate_size"`
	NumAttentionHeads *int64   `json:"num_attention_heads"`
	NumHiddenLayers   *int64   `json:"num_hidden_layers"`
	ImageSize         *int64   `json:"image_size"`
	PatchSize         *int64   `json:"patch_size"`
	NumChannels       *int64   `json:"num_channels"`
	ProjectionDim     *int64   `json:"projection_dim"`
	HiddenAct         *string  `json:"hidden_act"`
	LayerNormEps      *float64 `json:"layer_norm_eps"`
}

func orDefault[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}

// parseHFConfig reads a CLIPConfig (model_type "clip": vision_config plus
// the top-level projection_dim CLIPModel projects to) or a
// CLIPVisionConfig (model_type "clip_vision_model"). Absent keys take
// CLIPVisionConfig's defaults, as transformers does.
func parseHFConfig(path string, b []byte) (*archFile, string, error) {
	var top struct {
		ModelType     string    `json:"model_type"`
		VisionConfig  *hfVision `json:"vision_config"`
		ProjectionDim *int64    `json:"projection_dim"`
		hfVision
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	var v hfVision
	a := &archFile{path: path, kind: ViT}
	switch {
	case top.ModelType == "clip" || (top.ModelType == "" && top.VisionConfig != nil):
		if top.VisionConfig != nil {
			v = *top.VisionConfig
		}
		a.embed, a.embedFrom = orDefault(top.ProjectionDim, 512), "projection_dim"
	case top.ModelType == "clip_vision_model":
		v = top.hfVision // the top-level projection_dim is the outer field's
		a.embed, a.embedFrom = orDefault(top.ProjectionDim, 512), "projection_dim"
	default:
		return nil, fmt.Sprintf("%s is not a CLIP config (model_type %q), ignored", path, top.ModelType), nil
	}
	a.width = orDefault(v.HiddenSize, 768)
	a.mlp = orDefault(v.IntermediateSize, 3072)
	a.heads = orDefault(v.NumAttentionHeads, 12)
	a.layers = orDefault(v.NumHiddenLayers, 12)
	a.image = orDefault(v.ImageSize, 224)
	a.patch = orDefault(v.PatchSize, 32)
	if c := orDefault(v.NumChannels, 3); c != 3 {
		return nil, "", fmt.Errorf("%s: vision num_channels %d is not supported; CLIP towers read RGB", path, c)
	}
	if eps := orDefault(v.LayerNormEps, 1e-5); eps != 1e-5 {
		return nil, "", fmt.Errorf("%s: vision layer_norm_eps %g is not supported; CLIP uses 1e-5", path, eps)
	}
	switch act := orDefault(v.HiddenAct, "quick_gelu"); act {
	case "quick_gelu":
		a.act = QuickGELU
	case "gelu":
		a.act = GELU
	case "gelu_new", "gelu_pytorch_tanh":
		a.act = GELUTanh
	default:
		return nil, "", fmt.Errorf("%s: vision hidden_act %q is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)", path, act)
	}
	return a, "", nil
}

// parseOpenCLIPConfig reads OpenCLIP's hub config: model_cfg.vision_cfg
// with OpenCLIP's defaults (width 768, 12 layers, head_width 64,
// mlp_ratio 4, patch 16, image 224) and model_cfg.quick_gelu (default
// false: nn.GELU). A list of layers means a ModifiedResNet.
func parseOpenCLIPConfig(path string, b []byte) (*archFile, string, error) {
	var top struct {
		ModelCfg *struct {
			EmbedDim  *int64 `json:"embed_dim"`
			QuickGELU bool   `json:"quick_gelu"`
			VisionCfg *struct {
				Layers        json.RawMessage `json:"layers"`
				Width         *int64          `json:"width"`
				HeadWidth     *int64          `json:"head_width"`
				MLPRatio      *float64        `json:"mlp_ratio"`
				PatchSize     *int64          `json:"patch_size"`
				ImageSize     json.RawMessage `json:"image_size"`
				TimmModelName string          `json:"timm_model_name"`
				PoolType      string          `json:"pool_type"`
			} `json:"vision_cfg"`
		} `json:"model_cfg"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if top.ModelCfg == nil || top.ModelCfg.VisionCfg == nil {
		return nil, fmt.Sprintf("%s has no model_cfg.vision_cfg, ignored", path), nil
	}
	v := top.ModelCfg.VisionCfg
	if v.TimmModelName != "" {
		return nil, "", fmt.Errorf("%s: timm tower %q is not supported (only OpenCLIP's own ViT and ModifiedResNet)", path, v.TimmModelName)
	}
	if v.PoolType != "" && v.PoolType != "tok" {
		return nil, "", fmt.Errorf("%s: vision pool_type %q is not supported (only the class token, \"tok\")", path, v.PoolType)
	}
	a := &archFile{path: path, openCLIP: true, kind: ViT}
	a.width = orDefault(v.Width, 768)
	headWidth := orDefault(v.HeadWidth, 64)
	if headWidth <= 0 {
		return nil, "", fmt.Errorf("%s: vision head_width %d must be positive", path, headWidth)
	}
	if err := json.Unmarshal(orRaw(v.ImageSize, "224"), &a.image); err != nil {
		var hw [2]int64
		if json.Unmarshal(v.ImageSize, &hw) != nil || hw[0] != hw[1] {
			return nil, "", fmt.Errorf("%s: vision image_size %s: want one number (square images)", path, v.ImageSize)
		}
		a.image = hw[0]
	}
	if top.ModelCfg.EmbedDim != nil {
		a.embed, a.embedFrom = *top.ModelCfg.EmbedDim, "embed_dim"
	}
	layers := orRaw(v.Layers, "12")
	if json.Unmarshal(layers, &a.layers) != nil {
		var rl []int64
		if json.Unmarshal(layers, &rl) != nil || len(rl) != 4 {
			return nil, "", fmt.Errorf("%s: vision layers %s: want a number (ViT) or four (ResNet)", path, layers)
		}
		a.kind = ResNet
		copy(a.resLayers[:], rl)
		a.width = orDefault(v.Width, 64)
		// OpenCLIP's ModifiedResNet: heads = width * 32 // head_width.
		a.heads = a.width * 32 / headWidth
		return a, "", nil
	}
	a.heads = a.width / headWidth
	a.patch = orDefault(v.PatchSize, 16)
	a.mlp = int64(float64(a.width) * orDefault(v.MLPRatio, 4.0))
	a.act = GELU
	if top.ModelCfg.QuickGELU {
		a.act = QuickGELU
	}
	return a, "", nil
}

func orRaw(r json.RawMessage, d string) json.RawMessage {
	if len(r) == 0 || string(r) == "null" {
		return json.RawMessage(d)
	}
	return r
}

// apply checks what both the file and the tensor shapes say, and takes
// from the file what shapes cannot say: the head count and the activation.
func (a *archFile) apply(c *Config) error {
	if a.kind != c.Kind {
		return fmt.Errorf("%s describes a %s tower but the weights hold a %s", a.path, a.kind, c.Kind)
	}
	mismatch := func(field string, said, got int64) error {
		if said != 0 && said != got {
			return fmt.Errorf("%s: %s is %d but the weights have %d (is this config for these weights?)", a.path, field, said, got)
		}
		return nil
	}
	checks := []error{mismatch("width", a.width, c.Width), mismatch("image size", a.image, c.InputResolution)}
	if a.embedFrom != "" {
		checks = append(checks, mismatch(a.embedFrom, a.embed, c.EmbedDim))
	}
	if c.Kind == ViT {
		checks = append(checks, mismatch("layers", a.layers, c.Layers), mismatch("patch size", a.patch, c.PatchSize),
			mismatch("MLP width", a.mlp, c.mlpWidth()))
	} else {
		for i := range a.resLayers {
			checks = append(checks, mismatch(fmt.Sprintf("stage %d blocks", i+1), a.resLayers[i], c.ResLayers[i]))
		}
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	pooled := c.Width // the attention pool of a ResNet works on Width*32
	if c.Kind == ResNet {
		pooled *= 32
	}
	if a.heads <= 0 || pooled%a.heads != 0 {
		return fmt.Errorf("%s: %d heads cannot split width %d", a.path, a.heads, pooled)
	}
	c.Heads = a.heads
	if c.Kind == ViT {
		c.Act = a.act
		if c.Act == QuickGELU {
			c.Act = "" // the default, so configs compare equal to OpenAI's
		}
	}
	return nil
}
