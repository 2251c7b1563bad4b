package checkpoint

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// Model directories written by export --precision bf16|int8 store the
// matrices that inference holds in low precision (every GPT-2 Conv1D, the
// mapper's linear layers and the tied LM head) in that form, so loading
// them converts nothing:
//
//   - <name>: I8 or BF16, output-major [out, in] whatever the fp32 layout
//     (GPT-2's Conv1D stores [in, out]; the kernels and the per-output
//     scales want each output's weights contiguous);
//   - <name>_scale: F32 [out], int8 only: the weight is I8 · scale[out];
//   - gpt.lm_head.weight: the LM head, while gpt.transformer.wte.weight
//     stays F32 for the token lookups (as quantize-at-load keeps it).
//
// Everything else stays F32. config.yaml's weights_precision names the form
// and generation.precision defaults to it.

// HeadName is the LM head's tensor in a low-precision model file.
const HeadName = "gpt.lm_head.weight"

// ScaleSuffix follows a weight's name to name its int8 scales.
const ScaleSuffix = "_scale"

// lowLayer is one matrix inference may hold in bf16 or int8.
type lowLayer struct {
	name        string
	k, n        int64
	weight      *ts.Tensor // the fp32 parameter; nil for the head (tied to wte)
	wTransposed bool       // weight is [n, k] (Linear), else [k, n] (Conv1D)
	low         **nn.LowP
}

// lowLayers lists the model's low-precision matrices by file name.
func lowLayers(m *clipcap.Model) ([]lowLayer, error) {
	names := map[*ts.Tensor]string{}
	for _, p := range m.Store.All() {
		names[p.Tensor] = p.Name
	}
	g := m.GPT
	out := []lowLayer{{name: HeadName, k: g.Cfg.NEmbd, n: g.Cfg.VocabSize, low: &g.Head}}
	for _, b := range g.Blocks {
		for _, c := range []*nn.Conv1D{b.Attn, b.Proj, b.Fc, b.MlpProj} {
			s := c.Weight.MustSize()
			out = append(out, lowLayer{name: names[c.Weight], k: s[0], n: s[1], weight: c.Weight, low: &c.Low})
		}
	}
	ls, err := mapper.Linears(m.Mapper)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		s := l.Weight.MustSize()
		out = append(out, lowLayer{name: names[l.Weight], k: s[1], n: s[0], weight: l.Weight, wTransposed: true, low: &l.Low})
	}
	for _, l := range out {
		if l.name == "" {
			return nil, fmt.Errorf("checkpoint: a low-precision layer's weight is not a parameter of the model")
		}
	}
	return out, nil
}

// storedPrecision reads which form the file holds the low-precision
// matrices in: FP32 when none is I8 or BF16, else the one form all share
// (the LM head, which fp32 files do not hold apart from wte, included).
func storedPrecision(src *tensorfile.SafetensorsFile, layers []lowLayer) (nn.Precision, error) {
	form := func(name string) nn.Precision {
		switch dt, _, _ := src.Info(name); dt {
		case tensorfile.I8:
			return nn.Int8
		case tensorfile.BF16:
			return nn.BF16
		}
		return nn.FP32
	}
	p, first := nn.Precision(""), ""
	for _, l := range layers {
		if l.weight == nil || !src.Has(l.name) {
			continue // the head (below); a missing tensor is the loader's to report
		}
		if lp := form(l.name); p == "" {
			p, first = lp, l.name
		} else if lp != p {
			return "", fmt.Errorf("tensor %s is stored as %s but %s as %s: one file holds one precision", l.name, lp, first, p)
		}
	}
	if p == "" {
		p = nn.FP32
	}
	switch head := src.Has(HeadName); {
	case p == nn.FP32 && head:
		return "", fmt.Errorf("tensor %s: a separate LM head belongs to bf16/int8 files, and this one stores its matrices as float32", HeadName)
	case p != nn.FP32 && !head:
		return "", fmt.Errorf("no tensor %s: a %s file stores the LM head apart from wte", HeadName, p)
	case head && form(HeadName) != p:
		return "", fmt.Errorf("tensor %s is stored as %s but %s as %s: one file holds one precision", HeadName, form(HeadName), first, p)
	}
	return p, nil
}

// loadLow reads the stored low-precision matrices: each becomes a LowP
// (kept on the layer when keep, and the device is the CPU) and its
// dequantized values fill the fp32 parameter, so the model also computes in
// fp32 (or trains) with exactly the weights the file holds. It returns the
// file names it consumed.
func loadLow(src *tensorfile.SafetensorsFile, path string, layers []lowLayer, dev gotch.Device, keep bool) (map[string]bool, error) {
	used := map[string]bool{}
	for _, l := range layers {
		rt, err := src.Tensor(l.name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var scale *tensorfile.RawTensor
		if rt.Dtype == tensorfile.I8 {
			s, err := src.Tensor(l.name + ScaleSuffix)
			if err != nil {
				return nil, fmt.Errorf("%s: int8 tensor %s has no scale tensor %s%s", path, l.name, l.name, ScaleSuffix)
			}
			scale = &s
			used[l.name+ScaleSuffix] = true
		}
		low, err := nn.LowPFromTensors(l.k, l.n, rt, scale)
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %s: %w", path, l.name, err)
		}
		used[l.name] = true
		if l.weight != nil {
			if err := fillDequantized(l, low); err != nil {
				return nil, fmt.Errorf("%s: tensor %s: %w", path, l.name, err)
			}
		}
		if keep && !dev.IsCuda() {
			*l.low = low
		}
	}
	return used, nil
}

func fillDequantized(l lowLayer, low *nn.LowP) error {
	if !l.weight.MustDevice().IsCuda() {
		return low.DequantizeInto(l.weight, l.wTransposed)
	}
	tmp := ts.MustEmpty(l.weight.MustSize(), gotch.Float, gotch.CPU)
	defer tmp.MustDrop()
	if err := low.DequantizeInto(tmp, l.wTransposed); err != nil {
		return err
	}
	torchrt.NoGrad(func() { l.weight.Copy_(tmp) })
	return nil
}

// lowStateDict is StateDict with every low-precision matrix the model holds
// in its stored form (see the file comment); p names that form.
func lowStateDict(m *clipcap.Model, p nn.Precision) (map[string]tensorfile.RawTensor, error) {
	sd, err := StateDict(m)
	if err != nil {
		return nil, err
	}
	if p == nn.FP32 {
		return sd, nil
	}
	layers, err := lowLayers(m)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		low := *l.low
		if low == nil || low.Prec != p {
			return nil, fmt.Errorf("checkpoint: %s is not held in %s", l.name, p)
		}
		w, s := low.Tensors()
		sd[l.name] = w
		if s != nil {
			sd[l.name+ScaleSuffix] = *s
		}
	}
	return sd, nil
}

// checkStored makes config.yaml and the weights agree on the stored form.
func checkStored(dir string, cfg DirConfig, stored nn.Precision) error {
	said, err := nn.ParsePrecision(cfg.WeightsPrecision)
	if err != nil {
		return fmt.Errorf("%s: weights_precision: %w", filepath.Join(dir, ConfigFile), err)
	}
	if said != stored {
		return fmt.Errorf("%s says weights_precision %s, but %s stores its matrices as %s", filepath.Join(dir, ConfigFile), said, WeightsFile, stored)
	}
	return nil
}

// LoadStored reads a model directory for inference: matrices stored in
// bf16 or int8 stay in that form on the layers (on the CPU; on CUDA they
// are dequantized), ready to compute without conversion. It also returns
// the stored precision (FP32 for ordinary directories).
func LoadStored(dir string, dev gotch.Device) (*clipcap.Model, DirConfig, nn.Precision, error) {
	cfg, err := ReadDirConfig(dir)
	if err != nil {
		return nil, cfg, "", err
	}
	m, stored, err := loadAs(dir, cfg.Model, dev, true)
	if err == nil {
		err = checkStored(dir, cfg, stored)
	}
	return m, cfg, stored, err
}

// ExportDir writes the model directory src to the new directory out with
// its GPT-2 and mapper matrices stored in p (see the file comment), so that
// loading it at p converts nothing; generation.precision becomes p. The
// tokenizer files and a carried CLIP tower are copied. A directory stored
// in bf16 or int8 exports only to that form or to fp32 (its dequantized
// weights: the originals are gone); it returns a note saying so.
func ExportDir(src, out string, p nn.Precision) (string, error) {
	if err := newDir(src, out); err != nil {
		return "", err
	}
	m, cfg, stored, err := LoadStored(src, gotch.CPU)
	if err != nil {
		return "", err
	}
	note := ""
	switch {
	case stored == p:
	case stored == nn.FP32:
		if _, err := m.GPT.SetPrecision(p); err != nil {
			return "", err
		}
		if err := mapper.SetPrecision(m.Mapper, p); err != nil {
			return "", err
		}
	case p == nn.FP32:
		if _, err := m.GPT.SetPrecision(p); err != nil {
			return "", err
		}
		if err := mapper.SetPrecision(m.Mapper, p); err != nil {
			return "", err
		}
		note = fmt.Sprintf("%s stores %s weights: exported their dequantized values (the original float32 weights are not in it)", src, stored)
	default:
		return "", fmt.Errorf("%s stores %s weights; export %s from the float32 directory it came from (or export fp32 to get the dequantized weights)", src, stored, p)
	}
	sd, err := lowStateDict(m, p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	meta := map[string]string{"format": "clipcap-1", "mapper": string(m.Cfg.Mapper.Kind), "precision": string(p)}
	if err := tensorfile.WriteSafetensors(filepath.Join(out, WeightsFile), sd, meta); err != nil {
		return "", err
	}
	cfg.WeightsPrecision = ""
	switch {
	case p != nn.FP32:
		cfg.WeightsPrecision = string(p)
		cfg.Generation.Precision = string(p)
	case stored != nn.FP32: // the default came with the stored form
		cfg.Generation.Precision = ""
	}
	files := []string{VocabFile, MergesFile}
	if cfg.CLIP.Weights != "" {
		files = append(files, cfg.CLIP.Weights)
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(src, f), filepath.Join(out, f)); err != nil {
			if errors.Is(err, os.ErrNotExist) && f != cfg.CLIP.Weights {
				continue // tokenizer files are optional in a model directory
			}
			return "", err
		}
	}
	return note, WriteDirConfig(out, cfg)
}

// copyFile copies src to dst atomically, streaming (CLIP towers are large).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return tensorfile.WriteFileAtomic(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// newDir refuses an out that is src or a directory with files in it:
// exporting never overwrites a model.
func newDir(src, out string) error {
	a, err1 := filepath.Abs(src)
	b, err2 := filepath.Abs(out)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if a == b {
		return fmt.Errorf("export: --out %s is the model directory itself", out)
	}
	entries, err := os.ReadDir(out)
	if err == nil && len(entries) > 0 {
		return fmt.Errorf("export: %s already exists and is not empty; give a new directory", out)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
