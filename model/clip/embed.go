package clip

import (
	"context"
	"fmt"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/model/weights"
)

// EmbedFiles decodes and preprocesses the image files as clip.py's
// transform does at the tower's input resolution, encodes them batch at a
// time (batch <= 0 means 32), and returns a float32 [len(files), EmbedDim]
// tensor, rows in input order. The first unreadable image stops it with an
// error naming the file.
func (m *Model) EmbedFiles(ctx context.Context, files []string, batch int) (weights.RawTensor, error) {
	if len(files) == 0 {
		return weights.RawTensor{}, fmt.Errorf("clip: no images to embed")
	}
	if batch <= 0 {
		batch = 32
	}
	n := int(m.Config.InputResolution)
	pl := &imageproc.Pipeline{Pre: imageproc.NewPreprocessor(n)}
	inputs := make([]imageproc.Input, len(files))
	for i, f := range files {
		inputs[i] = imageproc.Input{Name: f}
	}
	out := weights.RawTensor{Dtype: weights.F32, Shape: []int64{int64(len(files)), m.Config.EmbedDim}}
	pixels := make([]float32, 0, batch*3*n*n)
	flush := func() error {
		if len(pixels) == 0 {
			return nil
		}
		rows, err := m.encodePixels(pixels)
		if err != nil {
			return err
		}
		out.Data = append(out.Data, rows.Data...)
		pixels = pixels[:0]
		return nil
	}
	err := pl.Each(ctx, inputs, func(r imageproc.Result) error {
		if r.Err != nil {
			return r.Err
		}
		pixels = append(pixels, r.Pixels...)
		if len(pixels) == cap(pixels) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return weights.RawTensor{}, fmt.Errorf("clip: embed: %w", err)
	}
	return out, nil
}

// encodePixels encodes k CHW images packed in px and returns their rows.
func (m *Model) encodePixels(px []float32) (weights.RawTensor, error) {
	n := m.Config.InputResolution
	k := int64(len(px)) / (3 * n * n)
	x, err := ts.NewTensorFromData(px, []int64{k, 3, n, n})
	if err != nil {
		return weights.RawTensor{}, err
	}
	defer x.MustDrop()
	y, err := m.Encode(x)
	if err != nil {
		return weights.RawTensor{}, err
	}
	defer y.MustDrop()
	return weights.FromTorch(y)
}
