package randmodel

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/model/clip"
)

// The calibrated tower standardizes its outputs over the calibration images
// (mean 0, std 1 per dimension) and is a deterministic function of the seed.
func TestWriteCalibratedCLIP(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := 0; i < 12; i++ {
		im := image.NewRGBA(image.Rect(0, 0, 40, 40))
		for y := 0; y < 40; y++ {
			for x := 0; x < 40; x++ {
				v := uint8((x*7 + y*i*13 + i*31) % 256)
				im.Set(x, y, color.RGBA{v, uint8(255 - int(v)), uint8(i * 20), 255})
			}
		}
		f := filepath.Join(dir, "img"+string(rune('a'+i))+".png")
		var buf bytes.Buffer
		if err := png.Encode(&buf, im); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	cfg := clip.Config{Kind: clip.ResNet, Width: 8, ResLayers: [4]int64{1, 1, 1, 1}, InputResolution: 32, EmbedDim: 16, Heads: 4}
	a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	for _, p := range []string{a, b} {
		if err := WriteCalibratedCLIP(p, cfg, 5, files, nil); err != nil {
			t.Fatal(err)
		}
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ba, bb) {
		t.Fatal("same seed and images, different towers")
	}
	m, _, err := clip.LoadWith(a, gotch.CPU, clip.Options{Heads: cfg.Heads})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := caption.EmbedFiles(t.Context(), m, files, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	n, d := len(files), int(cfg.EmbedDim)
	for j := 0; j < d; j++ {
		var s, ss float64
		for i := 0; i < n; i++ {
			x := float64(v[i*d+j])
			s += x
			ss += x * x
		}
		mean := s / float64(n)
		std := math.Sqrt((ss - float64(n)*mean*mean) / float64(n-1))
		if math.Abs(mean) > 1e-3 || math.Abs(std-1) > 1e-3 {
			t.Fatalf("dimension %d: mean %.4g std %.4g over the calibration images, want 0 and 1", j, mean, std)
		}
	}
	if err := WriteCalibratedCLIP(a, clip.Config{Kind: clip.ViT}, 1, files, nil); err == nil {
		t.Fatal("ViT calibration: no error")
	}
}
