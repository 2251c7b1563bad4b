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

// maxLayers bounds the layer counts read from tensor names (GPT-2 XL has
// 48 layers, the official transformer mapper 8): a name such as
// "gpt.transformer.h.99999999.ln_1.weight" must not make the model allocate
// a hundred million layers before loading finds the rest missing.
const maxLayers = 1024

// layerCount returns the number of layers named "<prefix>.<i>.*": indices
// must run from 0 without gaps and stay under maxLayers, else the error
// names the tensor that breaks the rule. Components that are not canonical
// decimal ints are left for the loader to report as unused tensors.
func layerCount(sh map[string][]int64, prefix string) (int64, error) {
	example := map[int64]string{} // a tensor of each layer, the first by name
	top := int64(-1)
	for name := range sh {
		rest, ok := strings.CutPrefix(name, prefix+".")
		if !ok {
			continue
		}
		comp, _, ok := strings.Cut(rest, ".")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(comp, 10, 64)
		if err != nil || v < 0 || strconv.FormatInt(v, 10) != comp {
			continue
		}
		if e, seen := example[v]; !seen || name < e {
			example[v] = name
		}
		if v > top || (v == top && name < example[top]) {
			top = v
		}
	}
	n := top + 1
	if n > maxLayers {
		return 0, fmt.Errorf("tensor %s: layer index %d is beyond the %d layers a checkpoint may have", example[top], top, maxLayers)
	}
	if int64(len(example)) != n {
		missing := int64(0)
		for ; missing < n; missing++ {
			if _, ok := example[missing]; !ok {
				break
			}
		}
		return 0, fmt.Errorf("tensor %s: layer index %d, but no %s.%d.* tensors (layer indices must run from 0 without gaps)", example[top], top, prefix, missing)
	}
	return n, nil
}

// impliedParams counts the weights a configuration allocates, as
// clipcap.New builds it (float64: the point is to compare absurd sizes
// without overflow).
func impliedParams(c clipcap.Config) float64 {
	g, m := c.GPT2, c.Mapper
	e, in := float64(g.NEmbd), float64(g.Inner())
	layerNorm := 2 * e
	gpt := float64(g.VocabSize)*e + float64(g.NPositions)*e + layerNorm +
		float64(g.NLayer)*(2*layerNorm+e*3*e+3*e+e*e+e+e*in+in+in*e+e)
	clip, l := float64(m.ClipDim), float64(m.PrefixLength)
	var mp float64
	switch m.Kind {
	case mapper.MLP:
		hidden := float64(m.EmbedDim * m.PrefixLength / 2)
		mp = clip*hidden + hidden + hidden*e*l + e*l
	case mapper.Transformer:
		cl := float64(m.ClipLength)
		mp = clip*cl*e + cl*e + l*e +
			float64(m.NumLayers)*(2*layerNorm+e*e+e*2*e+e*e+e+e*2*e+2*e+2*e*e+e)
	}
	return gpt + mp
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
	n, err := layerCount(sh, "gpt.transformer.h")
	if err != nil {
		return c, err
	}
	g.NLayer = n
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
		if m.NumLayers, err = layerCount(sh, "clip_project.transformer.layers"); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("not an official ClipCap checkpoint: no clip_project.model.* (MLP) or clip_project.linear.* (transformer) tensors")
	}
	c = clipcap.Config{Mapper: m, GPT2: g, NormalizePrefix: opt.NormalizePrefix, FreezeGPT2: m.Kind == mapper.Transformer}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if err := checkHeld(c, sh); err != nil {
		return c, fmt.Errorf("the tensor names and shapes imply a model that %w", err)
	}
	return c, nil
}

// checkHeld refuses a configuration that needs more weights than the file
// holds: every weight is loaded from the file, so such a model could never
// load, and building it first would allocate whatever the names or the
// config declare.
func checkHeld(c clipcap.Config, sh map[string][]int64) error {
	var held float64
	for _, s := range sh {
		n := 1.0
		for _, d := range s {
			n *= float64(d)
		}
		held += n
	}
	if need := impliedParams(c); need > held {
		return fmt.Errorf("needs %.0f weights (%d GPT-2 layers of width %d, a %s mapper), but the file holds only %.0f",
			need, c.GPT2.NLayer, c.GPT2.NEmbd, c.Mapper.Kind, held)
	}
	return nil
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
