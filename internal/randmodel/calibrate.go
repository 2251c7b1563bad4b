package randmodel

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
)

// WriteCalibratedCLIP saves a seeded random CLIP tower of architecture cfg
// (OpenAI parameter names, safetensors) whose final projection is
// standardized on the given images: each output dimension gets mean 0 and
// standard deviation 1 over them. Random towers map every image close to one
// common direction; the standardization, an affine change of the last layer
// that keeps CLIP's architecture and names, makes the differences visible to
// a mapper trained for minutes. Only attention-pooled (ResNet) towers have
// the attnpool.c_proj layer this rescales.
func WriteCalibratedCLIP(path string, cfg clip.Config, seed int64, images []string, meta map[string]string) error {
	if cfg.Kind != clip.ResNet {
		return fmt.Errorf("randmodel: calibration rescales a ResNet's attnpool.c_proj; %s towers have none", cfg.Kind)
	}
	torchrt.ManualSeed(seed)
	store := nn.NewStore(gotch.CPU)
	m, err := clip.New(store.Root().Sub("visual"), gotch.CPU, cfg)
	if err != nil {
		return err
	}
	if err := calibrate(store, m, cfg, images); err != nil {
		return fmt.Errorf("calibrating the random CLIP: %w", err)
	}
	out, err := store.StateDict()
	if err != nil {
		return err
	}
	return tensorfile.WriteSafetensors(path, out, meta)
}

func calibrate(store *nn.Store, m *clip.Model, cfg clip.Config, files []string) error {
	pre := imageproc.NewPreprocessor(int(cfg.InputResolution))
	var flat []float32
	for _, f := range files {
		px, err := pre.File(f)
		if err != nil {
			return err
		}
		flat = append(flat, px...)
	}
	r := cfg.InputResolution
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
