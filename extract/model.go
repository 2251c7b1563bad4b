package extract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/model/clip"
)

// loadCLIP loads --clip (see clip.Resolve) and returns the name the
// manifest records: a release name ("ViT-B/32") as given, a file by its
// base name, so shard runs on machines with different mount points still
// merge.
func loadCLIP(ctx context.Context, spec, cache string, dev gotch.Device) (*clip.Model, string, error) {
	path, err := caption.ResolveCLIP(ctx, spec, cache, true)
	if err != nil {
		return nil, "", err
	}
	name := spec
	if st, err := os.Stat(spec); err == nil && !st.IsDir() {
		name = filepath.Base(spec)
	}
	m, _, err := clip.Load(path, dev)
	if err != nil {
		return nil, "", err
	}
	return m, name, nil
}

// Preprocess names the image transform in the manifest.
func Preprocess(nPx int64) string { return fmt.Sprintf("clip-pil-bicubic-%d", nPx) }
