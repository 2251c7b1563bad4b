package extract

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/datasets"
)

// Conceptual Captions get the original's trailing period unless
// NoAddPeriod, and the manifest says which.
func TestConceptualAddPeriodInManifest(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	tsv := filepath.Join(root, "cc.tsv")
	os.WriteFile(tsv, []byte("a red thing\thttp://example.invalid/1\nthe sky .\thttp://example.invalid/2\n"), 0o644)
	writeImage(t, datasets.ImageFile(root, 0), 2, 40, 40)
	writeImage(t, datasets.ImageFile(root, 1), 4, 40, 40)
	for _, tc := range []struct {
		noAdd bool
		want  []string
	}{{false, []string{"a red thing.", "the sky."}}, {true, []string{"a red thing", "the sky ."}}} {
		out := filepath.Join(root, "store-"+map[bool]string{false: "add", true: "noadd"}[tc.noAdd])
		opt := Options{Dataset: "conceptual", Input: tsv, CLIP: model, Out: out, Device: gotch.CPU, Stderr: io.Discard, NoAddPeriod: tc.noAdd}
		if _, err := Run(context.Background(), opt); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, out)
		if a := s.Manifest.AddPeriod; a == nil || *a == tc.noAdd {
			t.Fatalf("NoAddPeriod %v: manifest add_period %v", tc.noAdd, a)
		}
		for i, w := range tc.want {
			if s.Captions[i].Caption != w {
				t.Errorf("NoAddPeriod %v: caption %d %q, want %q", tc.noAdd, i, s.Captions[i].Caption, w)
			}
		}
	}
}

// --half is CUDA-only: on the CPU it fails before touching the store, with
// a message that says so.
func TestHalfNeedsCUDA(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	writeImage(t, filepath.Join(root, "imgs", "a.png"), 2, 40, 40)
	out := filepath.Join(root, "store")
	_, err := Run(context.Background(), Options{Dataset: "folder", Input: filepath.Join(root, "imgs"), CLIP: model, Out: out, Device: gotch.CPU, Stderr: io.Discard, Half: true})
	if err == nil || !strings.Contains(err.Error(), "CUDA") {
		t.Fatalf("--half on CPU: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--half on CPU created the store")
	}
}

// On CUDA, --half stores the fp16 embeddings of the fp16 tower (as
// parse_coco.py), marked in the manifest; they are within fp16 rounding
// (2e-2 of the largest value) of the float32 extraction.
func TestHalfExtractOnCUDA(t *testing.T) {
	if !gotch.CUDA.IsAvailable() {
		t.Skip("needs CUDA: clip.load computes in fp16 only on CUDA, and libtorch has no fp16 convolution or matmul kernels on the CPU")
	}
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	writeImage(t, filepath.Join(root, "imgs", "a.png"), 2, 40, 40)
	writeImage(t, filepath.Join(root, "imgs", "b.jpg"), 3, 50, 30)
	run := func(name string, half bool) [][]float32 {
		out := filepath.Join(root, name)
		if _, err := Run(context.Background(), Options{Dataset: "folder", Input: filepath.Join(root, "imgs"), CLIP: model, Out: out,
			Device: gotch.CudaBuilder(0), Stderr: io.Discard, Half: half}); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, out)
		if half && (s.Manifest.CLIPPrecision != "fp16" || s.Manifest.Dtype != "F16") {
			t.Fatalf("--half manifest: precision %q dtype %s", s.Manifest.CLIPPrecision, s.Manifest.Dtype)
		}
		rows := make([][]float32, s.Rows())
		for i := range rows {
			rows[i] = make([]float32, 16)
			s.Embedding(i, rows[i])
		}
		return rows
	}
	full, half := run("f32", false), run("f16", true)
	for i := range full {
		if d := maxRelDiff(half[i], full[i]); d > 2e-2 {
			t.Errorf("row %d: fp16 differs from fp32 by %.3g", i, d)
		}
	}
}
