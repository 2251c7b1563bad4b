package extract

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/datasets"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/model/clip"
)

// loadCLIP loads --clip (see caption.LoadCLIP) and returns the name the
// manifest records: a release name ("ViT-B/32") as given, a file by its
// base name, so shard runs on machines with different mount points still
// merge.
func loadCLIP(ctx context.Context, spec, cache string, dev gotch.Device, half bool, log io.Writer) (*clip.Model, string, error) {
	m, err := caption.LoadCLIP(ctx, spec, cache, dev, half, log)
	if err != nil {
		return nil, "", err
	}
	name := spec
	if _, err := os.Stat(spec); err == nil {
		name = filepath.Base(filepath.Clean(spec)) // a file, or a Hugging Face / OpenCLIP directory
	}
	return m, name, nil
}

// Preprocess names the image transform in the manifest.
func Preprocess(nPx int64) string { return fmt.Sprintf("clip-pil-bicubic-%d", nPx) }

// What the extract command's flags name, re-exported so the CLI needs only
// this package.
var (
	// Formats are the dataset formats --dataset takes.
	Formats = datasets.Formats
	// DefaultMaxPixels is the header pixel cap for images from anywhere.
	DefaultMaxPixels = imageproc.UntrustedMaxPixels
)

// DownloadOptions tune --download (the polite image downloader).
type DownloadOptions = datasets.DownloadOptions
