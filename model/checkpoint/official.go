// Package checkpoint reads and writes ClipCap weights in every format the
// project meets: our model directories, the official repository's
// checkpoints, and HuggingFace GPT-2 weights. Each source format has one
// name table here; model definitions never touch files.
package checkpoint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// Source is a checkpoint file opened for reading.
type Source interface {
	tensorfile.Lookup
	Close() error
}

// Open opens a safetensors file or a torch.save / TorchScript file, by
// content rather than by extension.
func Open(path string) (Source, error) {
	if isSafetensors(path) {
		return tensorfile.OpenSafetensors(path)
	}
	return tensorfile.OpenTorch(path)
}

// shapes lists every tensor's shape.
func shapes(src tensorfile.Lookup) (map[string][]int64, error) {
	out := map[string][]int64{}
	for _, n := range src.Names() {
		rt, err := src.Tensor(n)
		if err != nil {
			return nil, err
		}
		out[n] = rt.Shape
	}
	return out, nil
}

// officialName maps our parameter names to the official checkpoint's. They
// are the same: our store uses the official names.
func officialName(name string) string { return name }

// ignoredOfficial are tensors of official checkpoints that carry no weights
// of ours: the tied LM head and GPT-2's old attention-mask buffers.
func ignoredOfficial(name string) bool {
	return name == "gpt.lm_head.weight" || strings.HasSuffix(name, ".attn.bias") || strings.HasSuffix(name, ".attn.masked_bias")
}

// OfficialOptions override what InferOfficial cannot read from the shapes.
type OfficialOptions struct {
	GPT2            *gpt2.Config // nil: gpt2 small's settings, sizes from the shapes
	NumHeads        int64        // transformer mapper heads (official: 8)
	NormalizePrefix bool
}

// maxIndex returns 1 + the largest i in names "<prefix>.<i>.*".
func maxIndex(sh map[string][]int64, prefix string) int64 {
	n := int64(0)
	for name := range sh {
		if !strings.HasPrefix(name, prefix+".") {
			continue
		}
		rest := strings.TrimPrefix(name, prefix+".")
		if i := strings.IndexByte(rest, '.'); i > 0 {
			if v, err := strconv.ParseInt(rest[:i], 10, 64); err == nil && v+1 > n {
				n = v + 1
			}
		}
	}
	return n
}

// InferOfficial reads a ClipCap configuration from an official checkpoint's
// tensor shapes: mapper type and sizes, prefix and clip lengths, mapper
// layers, and GPT-2's width, depth, vocabulary and positions.
func InferOfficial(sh map[string][]int64, opt OfficialOptions) (clipcap.Config, error) {
	var c clipcap.Config
	wte, ok := sh["gpt.transformer.wte.weight"]
	if !ok || len(wte) != 2 {
		return c, fmt.Errorf("not an official ClipCap checkpoint: no gpt.transformer.wte.weight")
	}
	g := gpt2.Presets["gpt2"]
	if opt.GPT2 != nil {
		g = *opt.GPT2
	} else if e := wte[1]; e != 768 {
		g.NHead = headsForWidth(e)
	}
	g.VocabSize, g.NEmbd = wte[0], wte[1]
	if wpe, ok := sh["gpt.transformer.wpe.weight"]; ok && len(wpe) == 2 {
		g.NPositions = wpe[0]
	}
	g.NLayer = maxIndex(sh, "gpt.transformer.h")
	if fc, ok := sh["gpt.transformer.h.0.mlp.c_fc.weight"]; ok && len(fc) == 2 && fc[1] != 4*g.NEmbd {
		g.NInner = fc[1]
	}
	e := g.NEmbd
	m := mapper.Config{EmbedDim: e, NumHeads: opt.NumHeads}
	switch {
	case sh["clip_project.model.0.weight"] != nil:
		w0, w2 := sh["clip_project.model.0.weight"], sh["clip_project.model.2.weight"]
		if len(w0) != 2 || len(w2) != 2 {
			return c, fmt.Errorf("clip_project.model.{0,2}.weight must be matrices (got %v, %v)", w0, w2)
		}
		m.Kind, m.ClipDim = mapper.MLP, w0[1]
		if w2[0]%e != 0 {
			return c, fmt.Errorf("clip_project.model.2.weight has %d outputs, not a multiple of GPT-2's width %d", w2[0], e)
		}
		m.PrefixLength = w2[0] / e
	case sh["clip_project.linear.weight"] != nil:
		lw, pc := sh["clip_project.linear.weight"], sh["clip_project.prefix_const"]
		if len(lw) != 2 || len(pc) != 2 {
			return c, fmt.Errorf("clip_project.linear.weight / prefix_const have unexpected shapes %v, %v", lw, pc)
		}
		m.Kind, m.ClipDim, m.PrefixLength = mapper.Transformer, lw[1], pc[0]
		if lw[0]%e != 0 {
			return c, fmt.Errorf("clip_project.linear.weight has %d outputs, not a multiple of GPT-2's width %d", lw[0], e)
		}
		m.ClipLength = lw[0] / e
		m.NumLayers = maxIndex(sh, "clip_project.transformer.layers")
	default:
		return c, fmt.Errorf("not an official ClipCap checkpoint: no clip_project.model.* (MLP) or clip_project.linear.* (transformer) tensors")
	}
	c = clipcap.Config{Mapper: m, GPT2: g, NormalizePrefix: opt.NormalizePrefix, FreezeGPT2: m.Kind == mapper.Transformer}
	return c, c.Validate()
}

// headsForWidth gives the published GPT-2 head count for a width, else one
// head per 64 channels.
func headsForWidth(e int64) int64 {
	for _, p := range gpt2.Presets {
		if p.NEmbd == e {
			return p.NHead
		}
	}
	if e%64 == 0 {
		return e / 64
	}
	return 1
}

// LoadOfficial builds a model from an official checkpoint (torch.save of
// ClipCaptionModel / ClipCaptionPrefix's state dict, or a safetensors file
// with the same names). Wrapped state dicts ("model.", "state_dict.",
// "module." prefixes) are accepted.
func LoadOfficial(path string, opt OfficialOptions, dev gotch.Device) (*clipcap.Model, error) {
	src, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	view := stripWrapper(src)
	sh, err := shapes(view)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg, err := InferOfficial(sh, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := clipcap.New(cfg, dev)
	if err != nil {
		return nil, err
	}
	unused, err := nn.LoadInto(m.Store, view, path, officialName, nil)
	if err != nil {
		return nil, err
	}
	if extra := filterOut(unused, ignoredOfficial); len(extra) > 0 {
		return nil, fmt.Errorf("%s: tensors the model has no place for: %v", path, head(extra, 5))
	}
	return m, nil
}

func filterOut(names []string, drop func(string) bool) []string {
	var out []string
	for _, n := range names {
		if !drop(n) {
			out = append(out, n)
		}
	}
	return out
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(append([]string{}, s[:n]...), fmt.Sprintf("... %d more", len(s)-n))
	}
	return s
}

// prefixed exposes the tensors of src under a name prefix, stripped.
type prefixed struct {
	src    tensorfile.Lookup
	prefix string
}

func (p prefixed) Names() []string {
	var out []string
	for _, n := range p.src.Names() {
		if strings.HasPrefix(n, p.prefix) {
			out = append(out, strings.TrimPrefix(n, p.prefix))
		}
	}
	return out
}

func (p prefixed) Tensor(name string) (tensorfile.RawTensor, error) {
	return p.src.Tensor(p.prefix + name)
}

// stripWrapper removes a common wrapper prefix such as "model." or
// "module." (DataParallel) when no tensor is at the top level.
func stripWrapper(src tensorfile.Lookup) tensorfile.Lookup {
	names := src.Names()
	for _, pre := range []string{"state_dict.", "model.", "module.", "model_state_dict."} {
		all := len(names) > 0
		for _, n := range names {
			if !strings.HasPrefix(n, pre) {
				all = false
				break
			}
		}
		if all {
			return stripWrapper(prefixed{src, pre})
		}
	}
	return src
}
