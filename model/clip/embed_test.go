package clip

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// EmbedFiles = clip.py's preprocess (PIL) + the tower, in input order,
// across a batch boundary (batch 2 of 3 images).
func TestEmbedFiles(t *testing.T) {
	m, _, err := LoadWith(filepath.Join("testdata", "vit.safetensors"), gotch.CPU, Options{Heads: 2})
	if err != nil {
		t.Fatal(err)
	}
	img := func(n string) string { return filepath.Join("testdata", "images", n) }
	files := []string{img("grad_61x45.png"), img("noise_38x50.png"), img("grad_61x45.png")}
	for _, batch := range []int{2, 0} {
		rt, err := m.EmbedFiles(context.Background(), files, batch)
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
		assertClose(t, "embed", got, readF32(t, "embed_vit.bin"), 1e-4)
	}

	bad := append(append([]string{}, files...), img("broken.png"))
	if _, err := m.EmbedFiles(context.Background(), bad, 2); err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Fatalf("broken image: got %v, want an error naming broken.png", err)
	}
	if _, err := m.EmbedFiles(context.Background(), nil, 2); err == nil {
		t.Fatal("no images: no error")
	}
}

func TestResolve(t *testing.T) {
	cache := t.TempDir()
	ctx := context.Background()
	// An existing file is used as is.
	p := filepath.Join("testdata", "vit.pt")
	if got, err := Resolve(ctx, p, cache); err != nil || got != p {
		t.Fatalf("path: got %q, %v", got, err)
	}
	// A name already in the cache resolves without the network.
	want := filepath.Join(cache, "models", "ViT-B-32", "ViT-B-32.pt")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(want, []byte("x"), 0o644)
	if got, err := Resolve(ctx, "ViT-B/32", cache); err != nil || got != want {
		t.Fatalf("cached name: got %q, %v; want %q", got, err, want)
	}
	if _, err := Resolve(ctx, "ViT-Q/7", cache); err == nil || !strings.Contains(err.Error(), "RN50x4") {
		t.Fatalf("unknown name: got %v, want an error listing the known names", err)
	}
}

func TestParseDevice(t *testing.T) {
	if d, err := ParseDevice("cpu"); err != nil || d != gotch.CPU {
		t.Fatalf("cpu: %v %v", d, err)
	}
	for _, s := range []string{"tpu", "cuda:x", "cuda:-1", "cuda:99"} {
		if _, err := ParseDevice(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}
