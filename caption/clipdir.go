package caption

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clipcap/clipcap/model/clip"
)

// clipDirFiles are the weight files a CLIP directory may hold, in the order
// they are preferred: Hugging Face's (read with config.json) before
// OpenCLIP's hub files (read with open_clip_config.json).
var clipDirFiles = []struct{ weights, config string }{
	{"model.safetensors", clip.HFConfigFile},
	{"pytorch_model.bin", clip.HFConfigFile},
	{"open_clip_model.safetensors", clip.OpenCLIPConfigFile},
	{"open_clip_pytorch_model.bin", clip.OpenCLIPConfigFile},
}

// CLIPDirWeights returns the weights file of a CLIP directory: a Hugging
// Face CLIPModel / CLIPVisionModelWithProjection directory (config.json +
// model.safetensors or pytorch_model.bin) or an OpenCLIP hub directory
// (open_clip_config.json + open_clip_model.safetensors or
// open_clip_pytorch_model.bin). model/clip reads the config beside it.
func CLIPDirWeights(dir string) (string, error) {
	var seen []string
	for _, f := range clipDirFiles {
		w := filepath.Join(dir, f.weights)
		if _, err := os.Stat(w); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, f.config)); err != nil {
			seen = append(seen, fmt.Sprintf("%s without %s", f.weights, f.config))
			continue
		}
		return w, nil
	}
	if len(seen) > 0 {
		return "", fmt.Errorf("CLIP directory %s: %s (the config says the head count and activation; pass the weights file itself to infer them from shapes)", dir, strings.Join(seen, ", "))
	}
	var want []string
	for _, f := range clipDirFiles {
		want = append(want, f.config+" + "+f.weights)
	}
	return "", fmt.Errorf("%s is a directory but not a CLIP one: want %s", dir, strings.Join(want, ", or "))
}

// clipDir resolves a directory argument; ok is false for anything else.
func clipDir(p string) (string, bool, error) {
	st, err := os.Stat(p)
	if err != nil || !st.IsDir() {
		return "", false, nil
	}
	w, err := CLIPDirWeights(p)
	return w, true, err
}
