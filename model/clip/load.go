package clip

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/nn"
)

// Options adjust Load.
type Options struct {
	// Heads overrides the inferred head count (build_model's width/64 for
	// ViT, width*32/64 for ResNet) when positive.
	Heads int64
	// Act overrides the ViT MLP activation when set (e.g. the one a model
	// directory recorded when it imported the tower).
	Act Activation
	// Half converts the tower to fp16 after loading (CUDA only).
	Half bool
	// Precision bf16 or int8 makes the tower compute in bf16 after
	// loading (Model.SetPrecision); "" or fp32 leaves it float32.
	Precision nn.Precision
	// NoConfigFile ignores config.json / open_clip_config.json beside the
	// weights (the caller states the architecture through the options).
	NoConfigFile bool
}

// Load reads an image tower from path: an OpenAI TorchScript release (.pt,
// fp16 weights become float32), an OpenAI- or OpenCLIP-named state dict
// (safetensors or torch.save, full CLIP or image tower only, under any
// prefix such as "visual." or "state_dict.visual."), or a Hugging Face
// CLIPVisionModelWithProjection / CLIPModel safetensors. The architecture
// is inferred from tensor shapes and completed by a config.json (Hugging
// Face) or open_clip_config.json beside the file; Model.ArchSource says
// which rule applied. The text tower and
// other unrelated tensors are ignored; unexpected image-tower tensors are
// an error, as they mean the architecture was inferred wrongly.
func Load(path string, dev gotch.Device) (*Model, Config, error) {
	return LoadWith(path, dev, Options{})
}

// LoadWith is Load with options.
func LoadWith(path string, dev gotch.Device, opt Options) (*Model, Config, error) {
	src, closeSrc, err := openWeights(path)
	if err != nil {
		return nil, Config{}, err
	}
	defer closeSrc()
	v, err := visualView(path, src)
	if err != nil {
		return nil, Config{}, err
	}
	cfg, err := InferConfig(v.shapes)
	if err != nil {
		return nil, Config{}, fmt.Errorf("%s: %w", path, err)
	}
	source, err := resolveArch(path, &cfg, opt)
	if err != nil {
		return nil, Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, Config{}, fmt.Errorf("%s: %w", path, err)
	}
	store := nn.NewStore(dev)
	m, err := newModel(store.Root().Sub("visual"), dev, cfg, false)
	if err != nil {
		return nil, Config{}, fmt.Errorf("%s: %w", path, err)
	}
	unused, err := nn.LoadInto(store, v, path, func(n string) string { return n }, nil)
	if err != nil {
		return nil, Config{}, err
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		return nil, Config{}, fmt.Errorf("%s: image-tower tensors the inferred %s architecture has no place for: %v (wrong layer count or a different model?)", path, cfg.Kind, firstFew(unused))
	}
	store.SetTrainable("", false)
	m.store = store
	m.ArchSource = source
	low := opt.Precision != "" && opt.Precision != nn.FP32
	if opt.Half && low {
		return nil, Config{}, fmt.Errorf("clip: --half and --precision %s exclude each other", opt.Precision)
	}
	if opt.Half {
		if err := m.Half(); err != nil {
			return nil, Config{}, err
		}
	}
	if low {
		if err := m.SetPrecision(opt.Precision); err != nil {
			return nil, Config{}, err
		}
	}
	return m, cfg, nil
}

// resolveArch completes the shape-inferred cfg with a config file beside
// the weights and the options, and says in words where the head count and
// activation came from.
func resolveArch(path string, cfg *Config, opt Options) (string, error) {
	source := "inferred from tensor shapes as OpenAI's build_model does (heads = width/64, QuickGELU)"
	if !opt.NoConfigFile {
		a, note, err := findArchFile(path)
		if err != nil {
			return "", err
		}
		switch {
		case a != nil:
			if err := a.apply(cfg); err != nil {
				return "", err
			}
			source = "from " + a.path
		case note != "":
			source += "; " + note
		default:
			source += ": no " + HFConfigFile + " or " + OpenCLIPConfigFile + " beside the weights"
		}
	}
	var over []string
	if opt.Heads > 0 {
		cfg.Heads = opt.Heads
		over = append(over, "heads")
	}
	if opt.Act != "" && cfg.Kind == ViT {
		cfg.Act = opt.Act
		if cfg.Act == QuickGELU {
			cfg.Act = ""
		}
		over = append(over, "activation")
	}
	if len(over) > 0 {
		source += "; " + strings.Join(over, " and ") + " given by the caller"
	}
	return source, nil
}

// Describe is a one-line summary of the architecture for logs.
func (c Config) Describe() string {
	if c.Kind == ResNet {
		return fmt.Sprintf("ResNet %v width %d, %d attention-pool heads, %dpx -> %d", c.ResLayers, c.Width, c.Heads, c.InputResolution, c.EmbedDim)
	}
	return fmt.Sprintf("ViT %d layers x %d (%d heads, MLP %d, %s), patch %d, %dpx -> %d", c.Layers, c.Width, c.Heads,
		c.mlpWidth(), c.activation(), c.PatchSize, c.InputResolution, c.EmbedDim)
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return fmt.Sprintf("%v and %d more", s[:5], len(s)-5)
	}
	return fmt.Sprint(s)
}

// openWeights opens a safetensors file or a torch.save / TorchScript
// archive, chosen by content rather than extension.
func openWeights(path string) (tensorfile.Lookup, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("clip weights: %w", err)
	}
	head := make([]byte, 9)
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	// A safetensors file starts with an 8-byte header length and then '{'.
	if n == 9 && head[8] == '{' {
		sf, err := tensorfile.OpenSafetensors(path)
		if err != nil {
			return nil, nil, err
		}
		return sf, func() { sf.Close() }, nil
	}
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) || (n > 0 && head[0] == 0x80) {
		tf, err := tensorfile.OpenTorch(path)
		if err != nil {
			return nil, nil, err
		}
		return tf, func() { tf.Close() }, nil
	}
	return nil, nil, fmt.Errorf("%s: neither safetensors nor a torch/TorchScript archive", path)
}

// view presents a checkpoint's image tower under OpenAI's "visual.*" names.
type view struct {
	names  []string
	shapes map[string][]int64
	get    map[string]func() (tensorfile.RawTensor, error)
}

func (v *view) Names() []string { return v.names }

func (v *view) Tensor(name string) (tensorfile.RawTensor, error) {
	g, ok := v.get[name]
	if !ok {
		return tensorfile.RawTensor{}, fmt.Errorf("no tensor %q", name)
	}
	return g()
}

func (v *view) add(name string, shape []int64, get func() (tensorfile.RawTensor, error)) {
	v.names = append(v.names, name)
	v.shapes[name] = shape
	v.get[name] = get
}

// visualView finds the image tower in src: OpenAI names under whatever
// prefix precedes "conv1.weight" next to a class_embedding (ViT) or an
// attnpool (ResNet), else Hugging Face names.
func visualView(path string, src tensorfile.Lookup) (*view, error) {
	names := src.Names()
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	prefix, found := "", false
	for _, n := range names {
		p, ok := strings.CutSuffix(n, "conv1.weight")
		if ok && (have[p+"class_embedding"] || have[p+"attnpool.positional_embedding"]) {
			if !found || len(p) < len(prefix) {
				prefix, found = p, true
			}
		}
	}
	if found {
		return openaiView(src, names, prefix)
	}
	for _, n := range names {
		if p, ok := strings.CutSuffix(n, "vision_model.embeddings.patch_embedding.weight"); ok {
			return hfView(path, src, have, p)
		}
	}
	return nil, fmt.Errorf("%s: no CLIP image tower found (no OpenAI visual.conv1.weight or Hugging Face vision_model.* tensors)", path)
}

// openaiView renames prefix+X to visual.X, leaving out BatchNorm's
// num_batches_tracked (eval does not read it).
func openaiView(src tensorfile.Lookup, names []string, prefix string) (*view, error) {
	v := &view{shapes: map[string][]int64{}, get: map[string]func() (tensorfile.RawTensor, error){}}
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok || strings.HasSuffix(rest, "num_batches_tracked") {
			continue
		}
		if prefix == "" && !isVisualName(rest) {
			continue // a bare tower's names; anything else is not ours
		}
		t, err := src.Tensor(n)
		if err != nil {
			return nil, err
		}
		src, n := src, n
		v.add("visual."+rest, t.Shape, func() (tensorfile.RawTensor, error) { return src.Tensor(n) })
	}
	return v, nil
}

// isVisualName tells image-tower names from others when a state dict has
// no prefix (a saved model.visual). A full CLIP's text tower names
// (transformer.*, token_embedding, ...) would be taken for the ViT's, so
// they are only accepted when the ViT signature is present.
func isVisualName(n string) bool {
	for _, p := range []string{"conv", "bn", "class_embedding", "positional_embedding", "ln_pre", "ln_post", "proj", "transformer.", "layer", "attnpool."} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
