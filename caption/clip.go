package caption

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
)

// ResolveCLIP turns a CLIP argument into a weights file, the one resolver
// every command uses: an existing file is used as is; a Hugging Face or
// OpenCLIP directory gives its weights file (CLIPDirWeights); an OpenAI
// release name ("ViT-B/32", "RN50x4", ...) is looked up in the download cache
// (cacheDir, or download.CacheDir() when empty) and, when fetch is set,
// downloaded and sha256-verified on first use as clip.load does. Without
// fetch a missing download is an error naming the command that fetches it.
func ResolveCLIP(ctx context.Context, nameOrPath, cacheDir string, fetch bool) (string, error) {
	if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
		return nameOrPath, nil
	}
	if w, isDir, err := clipDir(nameOrPath); isDir {
		return w, err
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
	if !fetch {
		return "", fmt.Errorf("CLIP %s is not downloaded; run: clipcap download %s", nameOrPath, nameOrPath)
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
	pre := imageproc.NewPreprocessor(int(m.Config.InputResolution))
	out := tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: []int64{int64(len(files)), m.Config.EmbedDim}}
	err := eachPixelBatch(ctx, pre, files, batch, func(_ int, px []float32) error {
		y, err := EncodePixels(m, px)
		if err != nil {
			return err
		}
		defer y.MustDrop()
		rows, err := tensorfile.FromTorch(y)
		if err != nil {
			return err
		}
		out.Data = append(out.Data, rows.Data...)
		return nil
	})
	if err != nil {
		return tensorfile.RawTensor{}, fmt.Errorf("clip: embed: %w", err)
	}
	return out, nil
}

// eachPixelBatch is the files -> pixels half of every image path (embed,
// caption, eval): files decoded and preprocessed in parallel by
// imageproc.Pipeline, handed to fn in input order as packed CHW batches of
// at most batch images (<= 0 means 32), first being the index of the
// batch's first file. The first unreadable file stops it with an error
// naming the file.
func eachPixelBatch(ctx context.Context, pre *imageproc.Preprocessor, files []string, batch int, fn func(first int, pixels []float32) error) error {
	if batch <= 0 {
		batch = 32
	}
	inputs := make([]imageproc.Input, len(files))
	for i, f := range files {
		inputs[i] = imageproc.Input{Name: f}
	}
	per := 3 * pre.NPx * pre.NPx
	pixels := make([]float32, 0, batch*per)
	first := 0
	flush := func() error {
		if len(pixels) == 0 {
			return nil
		}
		err := fn(first, pixels)
		first += len(pixels) / per
		pixels = pixels[:0]
		return err
	}
	pl := &imageproc.Pipeline{Pre: pre}
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
	if err != nil {
		return err
	}
	return flush()
}

// EncodePixels encodes k CHW images packed in px (float32 at the tower's
// input resolution) on the tower's device, without autograd, and returns
// the [k, EmbedDim] embeddings there (the caller drops them).
func EncodePixels(m *clip.Model, px []float32) (*ts.Tensor, error) {
	n := m.Config.InputResolution
	if len(px) == 0 || int64(len(px))%(3*n*n) != 0 {
		return nil, fmt.Errorf("clip: %d pixel values are not whole %dx%d RGB images", len(px), n, n)
	}
	x, err := ts.NewTensorFromData(px, []int64{int64(len(px)) / (3 * n * n), 3, n, n})
	if err != nil {
		return nil, err
	}
	defer x.MustDrop()
	// Encode moves x to the tower's device and turns autograd off itself.
	return m.Encode(x)
}

// LoadCLIP resolves a CLIP argument (name, file or directory; names are
// downloaded on first use) and loads the tower on dev, in fp16 when half
// (CUDA only), logging which file and architecture rule were used.
func LoadCLIP(ctx context.Context, spec, cache string, dev gotch.Device, half bool, log io.Writer) (*clip.Model, error) {
	return LoadCLIPAt(ctx, spec, cache, dev, half, "", log)
}

// LoadCLIPAt is LoadCLIP at an inference precision: bf16 or int8 make the
// tower compute in bf16 (clip.Model.SetPrecision), "" or fp32 in float32.
func LoadCLIPAt(ctx context.Context, spec, cache string, dev gotch.Device, half bool, precision string, log io.Writer) (*clip.Model, error) {
	p, err := nn.ParsePrecision(precision)
	if err != nil {
		return nil, err
	}
	path, err := ResolveCLIP(ctx, spec, cache, true)
	if err != nil {
		return nil, err
	}
	m, _, err := clip.LoadWith(path, dev, clip.Options{Half: half, Precision: p})
	if err != nil {
		return nil, err
	}
	bf := ""
	if m.Precision() != nn.FP32 {
		bf = ", bf16 products"
	}
	fmt.Fprintf(log, "clip: %s: %s, architecture %s%s\n", path, m.Config.Describe(), m.ArchSource, bf)
	return m, nil
}
