package caption

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/clip"
)

// EmbedFiles = clip.py's preprocess (PIL) + the tower, in input order,
// across a batch boundary (batch 2 of 3 images).
func TestEmbedFiles(t *testing.T) {
	m, _, err := clip.LoadWith(filepath.Join(clipTestdata, "vit.safetensors"), gotch.CPU, clip.Options{Heads: 2})
	if err != nil {
		t.Fatal(err)
	}
	img := func(n string) string { return filepath.Join(clipTestdata, "images", n) }
	files := []string{img("grad_61x45.png"), img("noise_38x50.png"), img("grad_61x45.png")}
	for _, batch := range []int{2, 0} {
		rt, err := EmbedFiles(context.Background(), m, files, batch)
		if err != nil {
			t.Fatal(err)
		}
		if rt.Shape[0] != 3 || rt.Shape[1] != 16 {
			t.Fatalf("shape %v, want [3 16]", rt.Shape)
		}
		got, err := rt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		want := readF32(t, filepath.Join(clipTestdata, "embed_vit.bin"))
		var maxDiff, maxAbs float64
		for i := range want {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
			maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
		}
		if len(got) != len(want) || maxDiff > 1e-4*maxAbs {
			t.Fatalf("batch %d: %d values, max |diff| %.3g against PIL + PyTorch's %.3g", batch, len(got), maxDiff, maxAbs)
		}
	}

	bad := append(append([]string{}, files...), img("broken.png"))
	if _, err := EmbedFiles(context.Background(), m, bad, 2); err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Fatalf("broken image: got %v, want an error naming broken.png", err)
	}
	if _, err := EmbedFiles(context.Background(), m, nil, 2); err == nil {
		t.Fatal("no images: no error")
	}
}

func TestResolveCLIP(t *testing.T) {
	cache := t.TempDir()
	ctx := context.Background()
	// An existing file is used as is.
	p := filepath.Join(clipTestdata, "vit.pt")
	if got, err := ResolveCLIP(ctx, p, cache, true); err != nil || got != p {
		t.Fatalf("path: got %q, %v", got, err)
	}
	// A name already in the cache resolves without the network.
	want := filepath.Join(cache, "models", "ViT-B-32", "ViT-B-32.pt")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(want, []byte("x"), 0o644)
	if got, err := ResolveCLIP(ctx, "ViT-B/32", cache, true); err != nil || got != want {
		t.Fatalf("cached name: got %q, %v; want %q", got, err, want)
	}
	if _, err := ResolveCLIP(ctx, "ViT-Q/7", cache, true); err == nil || !strings.Contains(err.Error(), "RN50x4") {
		t.Fatalf("unknown name: got %v, want an error listing the known names", err)
	}
	// Without fetch, a name not yet downloaded says how to download it
	// (and touches no network).
	if _, err := ResolveCLIP(ctx, "RN50x4", cache, false); err == nil || !strings.Contains(err.Error(), "clipcap download RN50x4") {
		t.Fatalf("not downloaded: got %v, want the download command", err)
	}
}

// clipTestdata holds the tiny CLIP towers and images model/clip tests build from.
const clipTestdata = "../model/clip/testdata"

// readF32 reads a little-endian float32 fixture written by model/clip's gen.py.
func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
