package clip

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/download"
)

// Resolve turns --clip's argument into a weights file: an existing path is
// used as is; an OpenAI release name ("ViT-B/32", "RN50x4", ...) is looked up
// in the download cache (cacheDir, or download.CacheDir() when empty) and
// fetched, sha256-verified, when it is not there yet, as clip.load does.
func Resolve(ctx context.Context, nameOrPath, cacheDir string) (string, error) {
	if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
		return nameOrPath, nil
	}
	if _, known := known[nameOrPath]; !known {
		return "", fmt.Errorf("clip: %q is neither a weights file nor an OpenAI CLIP model name (%s)", nameOrPath, strings.Join(knownNames(), ", "))
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

func knownNames() []string {
	out := make([]string, 0, len(known))
	for n := range known {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseDevice reads "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
func ParseDevice(s string) (gotch.Device, error) {
	switch s {
	case "", "auto":
		return gotch.CudaIfAvailable(), nil
	case "cpu":
		return gotch.CPU, nil
	case "cuda":
		if !gotch.CUDA.IsAvailable() {
			return gotch.CPU, fmt.Errorf("device cuda: no CUDA device is available to this libtorch")
		}
		return gotch.CudaBuilder(0), nil
	}
	if rest, ok := strings.CutPrefix(s, "cuda:"); ok {
		i, err := strconv.Atoi(rest)
		if err != nil || i < 0 {
			return gotch.CPU, fmt.Errorf("device %q: want cuda:N with N a device index", s)
		}
		if int64(i) >= gotch.CUDA.DeviceCount() {
			return gotch.CPU, fmt.Errorf("device %q: only %d CUDA devices available", s, gotch.CUDA.DeviceCount())
		}
		return gotch.CudaBuilder(uint(i)), nil
	}
	return gotch.CPU, fmt.Errorf("device %q: want cpu, cuda, cuda:N or auto", s)
}
