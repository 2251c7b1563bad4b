package caption

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clip"
)

// ResolveCLIP turns --clip's argument into a weights file: an existing path is
// used as is; an OpenAI release name ("ViT-B/32", "RN50x4", ...) is looked up
// in the download cache (cacheDir, or download.CacheDir() when empty) and
// fetched, sha256-verified, when it is not there yet, as clip.load does.
func ResolveCLIP(ctx context.Context, nameOrPath, cacheDir string) (string, error) {
	if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
		return nameOrPath, nil
	}
	if _, err := clip.KnownConfig(nameOrPath); err != nil {
		return "", fmt.Errorf("clip: %q is neither a weights file nor an OpenAI CLIP model name (%s)", nameOrPath, strings.Join(clip.KnownNames(), ", "))
	}
	m, err := download.Lookup(nameOrPath)
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		if cacheDir, err = download.CacheDir(); err != nil {
			return "", err
		}
	}
	if len(m.Files) != 1 {
		return "", fmt.Errorf("clip: download registry lists %d files for %s, want one archive", len(m.Files), nameOrPath)
	}
	path := filepath.Join(download.ModelDir(cacheDir, nameOrPath), m.Files[0].Name)
	if _, err := os.Stat(path); err == nil {
		return path, nil // the downloader verified it when it wrote it
	}
	dir, err := download.Fetch(ctx, nameOrPath, download.Options{CacheDir: cacheDir})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, m.Files[0].Name), nil
}

// EmbedFiles decodes and preprocesses the image files as clip.py's
// transform does at the tower's input resolution, encodes them batch at a
// time (batch <= 0 means 32), and returns a float32 [len(files), EmbedDim]
// tensor, rows in input order. The first unreadable image stops it with an
// error naming the file.
func EmbedFiles(ctx context.Context, m *clip.Model, files []string, batch int) (tensorfile.RawTensor, error) {
	if len(files) == 0 {
		return tensorfile.RawTensor{}, fmt.Errorf("clip: no images to embed")
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
	out := tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: []int64{int64(len(files)), m.Config.EmbedDim}}
	pixels := make([]float32, 0, batch*3*n*n)
	flush := func() error {
		if len(pixels) == 0 {
			return nil
		}
		rows, err := encodePixels(m, pixels)
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
		return tensorfile.RawTensor{}, fmt.Errorf("clip: embed: %w", err)
	}
	return out, nil
}

// encodePixels encodes k CHW images packed in px and returns their rows.
func encodePixels(m *clip.Model, px []float32) (tensorfile.RawTensor, error) {
	n := m.Config.InputResolution
	k := int64(len(px)) / (3 * n * n)
	x, err := ts.NewTensorFromData(px, []int64{k, 3, n, n})
	if err != nil {
		return tensorfile.RawTensor{}, err
	}
	defer x.MustDrop()
	y, err := m.Encode(x)
	if err != nil {
		return tensorfile.RawTensor{}, err
	}
	defer y.MustDrop()
	return tensorfile.FromTorch(y)
}
