package extract

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/nn"
)

// tinyConfig is a ViT small enough for unit tests; its width gives one
// head, as build_model infers (width/64).
var tinyConfig = clip.Config{Kind: clip.ViT, Width: 64, Layers: 1, PatchSize: 8, InputResolution: 32, EmbedDim: 16, Heads: 1}

// writeCLIP saves a random-weight tower under OpenAI's names and returns
// the file, which extract loads by path like a real checkpoint.
func writeCLIP(t testing.TB, dir string, cfg clip.Config) string {
	t.Helper()
	store := nn.NewStore(gotch.CPU)
	if _, err := clip.New(store.Root().Sub("visual"), gotch.CPU, cfg); err != nil {
		t.Fatal(err)
	}
	tensors := map[string]tensorfile.RawTensor{}
	for _, p := range store.All() {
		rt, err := tensorfile.FromTorch(p.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		tensors[p.Name] = rt
	}
	path := filepath.Join(dir, "tiny-clip.safetensors")
	if err := tensorfile.WriteSafetensors(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// testImage draws a deterministic picture that differs per seed.
func testImage(seed, w, h int) *image.RGBA {
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			im.Set(x, y, color.RGBA{uint8(x*7 + seed*31), uint8(y*5 + seed*17), uint8((x ^ y) + seed*3), 255})
		}
	}
	return im
}

// writeImage writes a PNG (even seeds) or JPEG (odd seeds).
func writeImage(t testing.TB, path string, seed, w, h int) {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if seed%2 == 0 {
		err = png.Encode(&buf, testImage(seed, w, h))
	} else {
		err = jpeg.Encode(&buf, testImage(seed, w, h), &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openStore(t *testing.T, dir string) *featstore.Store {
	t.Helper()
	s, err := featstore.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// refEmbeddings encodes files one at a time with clip's own path.
func refEmbeddings(t *testing.T, modelPath string, files []string) [][]float32 {
	t.Helper()
	m, _, err := clip.Load(modelPath, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for _, f := range files {
		rt, err := caption.EmbedFiles(context.Background(), m, []string{f}, 1)
		if err != nil {
			t.Fatal(err)
		}
		v, err := rt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / m
}
