package extract

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/datasets"
	"github.com/clipcap/clipcap/data/imageproc/imagebomb"
)

type wantImage struct {
	id, file, split, domain string
	caps                    []string
}

func TestExtractFormats(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	img := func(rel string, seed int) string {
		p := filepath.Join(root, rel)
		writeImage(t, p, seed, 40+seed, 30+2*seed)
		return p
	}
	file := func(rel, content string) string {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		dataset, input, images, split string
		want                          []wantImage
	}{
		{"coco", file("k/dataset_coco.json", `{"images": [
			{"filepath": "val2014", "filename": "a.jpg", "split": "test", "cocoid": 5, "sentences": [{"raw": "x"}, {"raw": "y"}]},
			{"filepath": "train2014", "filename": "b.png", "split": "restval", "cocoid": 6, "sentences": [{"raw": "z"}]}]}`), "", "",
			[]wantImage{{"5", img("k/val2014/a.jpg", 1), "test", "", []string{"x", "y"}}, {"6", img("k/train2014/b.png", 2), "train", "", []string{"z"}}}},
		{"coco", file("c/annotations/train_caption.json", `[{"image_id": 3, "caption": "p"}, {"image_id": 4, "caption": "q"}, {"image_id": 3, "caption": "r"}]`), "", "",
			[]wantImage{{"3", img("c/train2014/COCO_train2014_000000000003.jpg", 3), "train", "", []string{"p", "r"}},
				{"4", img("c/val2014/COCO_val2014_000000000004.jpg", 4), "train", "", []string{"q"}}}},
		{"coco-format", file("f/captions_val2014.json", `{"images": [{"id": 9, "file_name": "i9.png"}],
			"annotations": [{"image_id": 9, "caption": "nine"}]}`), filepath.Join(root, "fimg"), "val",
			[]wantImage{{"9", img("fimg/i9.png", 5), "val", "", []string{"nine"}}}},
		{"nocaps", file("n/nocaps_val.json", `{"images": [{"id": 0, "file_name": "0.jpg", "domain": "near-domain"}, {"id": 1, "file_name": "1.jpg", "domain": "in-domain"}],
			"annotations": [{"image_id": 1, "caption": "one"}]}`), "", "",
			[]wantImage{{"0", img("n/0.jpg", 6), "val", "near-domain", []string{""}}, {"1", img("n/1.jpg", 7), "val", "in-domain", []string{"one"}}}},
		{"conceptual", file("cc/train.tsv", "a red thing\thttp://example.invalid/1.jpg\nblue\thttp://example.invalid/2\n"), "", "",
			[]wantImage{{"0", img("cc/0000/000000000", 8), "train", "", []string{"a red thing."}}, {"1", img("cc/0000/000000001", 9), "train", "", []string{"blue."}}}},
		{"folder", filepath.Join(root, "dir"), "", "",
			[]wantImage{{"a.png", img("dir/a.png", 10), "", "", []string{"first", "second"}}, {"sub/b.jpg", img("dir/sub/b.jpg", 11), "", "", []string{""}}}},
		{"jsonl", file("j/data.jsonl", "{\"image\": \"x.jpg\", \"caption\": \"ex\", \"split\": \"val\"}\n{\"image\": \"y.png\", \"captions\": [\"why\", \"y\"], \"split\": \"val\"}\n"), "", "val",
			[]wantImage{{"x.jpg", img("j/x.jpg", 13), "val", "", []string{"ex"}}, {"y.png", img("j/y.png", 12), "val", "", []string{"why", "y"}}}},
	}
	file("dir/a.txt", "first\nsecond\n")
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d-%s", i, c.dataset), func(t *testing.T) {
			out := filepath.Join(root, fmt.Sprintf("store%d", i))
			sum, err := Run(context.Background(), Options{Dataset: c.dataset, Input: c.input, Images: c.images, Split: c.split,
				RestvalAsTrain: true, CLIP: model, Out: out, Batch: 2, Device: gotch.CPU, Stderr: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			s := openStore(t, out)
			m := s.Manifest
			if m.CLIPModel != "tiny-clip.safetensors" || m.Preprocess != "clip-pil-bicubic-32" || m.EmbedDim != 16 || m.Dataset != c.dataset ||
				m.Images != len(c.want) || sum.Images != len(c.want) || len(m.Rejected) != 0 {
				t.Fatalf("manifest %+v summary %+v", m, sum)
			}
			var files []string
			line := 0
			for k, w := range c.want {
				files = append(files, w.file)
				for _, text := range w.caps {
					got := s.Captions[line]
					if got.ImageID != w.id || got.Caption != text || got.Split != w.split || got.Domain != w.domain ||
						got.Image != w.file || got.Embedding != k || got.Item == nil || *got.Item != k {
						t.Errorf("caption line %d: %+v, want image %s %q split %q domain %q row %d", line, got, w.id, text, w.split, w.domain, k)
					}
					line++
				}
			}
			if line != len(s.Captions) || m.Captions != line {
				t.Errorf("%d caption lines (manifest %d), want %d", len(s.Captions), m.Captions, line)
			}
			ref := refEmbeddings(t, model, files)
			row := make([]float32, 16)
			for k := range ref {
				s.Embedding(k, row)
				if d := maxRelDiff(row, ref[k]); d > 1e-5 {
					t.Errorf("row %d differs from clip.EmbedFiles by %.3g", k, d)
				}
			}
		})
	}
}

// Bad inputs are recorded in the manifest with a reason; the rest is stored.
func TestBadInputsRecorded(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	dir := filepath.Join(root, "imgs")
	writeImage(t, filepath.Join(dir, "good1.png"), 1, 50, 40)
	writeImage(t, filepath.Join(dir, "good2.jpg"), 2, 33, 61)
	var jpg strings.Builder
	writeImage(t, filepath.Join(root, "full.jpg"), 3, 64, 64)
	full, _ := os.ReadFile(filepath.Join(root, "full.jpg"))
	jpg.Write(full[:len(full)/2])
	bad := map[string]string{
		"corrupt.jpg":   "\xff\xd8\xff\xe0 garbage that is not a jpeg at all",
		"empty.png":     "",
		"text.png":      "hello, I am not an image",
		"truncated.jpg": jpg.String(),
		"bomb.png":      string(imagebomb.PNG(60000, 60000, 8, imagebomb.RGB)),
	}
	for name, data := range bad {
		os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644)
	}
	lines := "{\"image\": \"good1.png\", \"caption\": \"g1\"}\n{\"image\": \"missing.png\", \"caption\": \"m\"}\n"
	for _, n := range []string{"bomb.png", "corrupt.jpg", "empty.png", "good2.jpg", "text.png", "truncated.jpg"} {
		lines += fmt.Sprintf("{\"image\": %q, \"caption\": \"c\"}\n", n)
	}
	input := filepath.Join(dir, "data.jsonl")
	os.WriteFile(input, []byte(lines), 0o644)
	out := filepath.Join(root, "store")
	sum, err := Run(context.Background(), Options{Dataset: "jsonl", Input: input, CLIP: model, Out: out, Batch: 4, ShardSize: 3, Device: gotch.CPU, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, out)
	if sum.Images != 2 || sum.Rejected != 6 || s.Rows() != 2 || len(s.Captions) != 2 || s.Captions[1].ImageID != "good2.jpg" || *s.Captions[1].Item != 5 {
		t.Fatalf("summary %+v, captions %+v", sum, s.Captions)
	}
	want := []struct {
		file, reason string
		item         int
	}{
		{"missing.png", "no such file", 1}, {"bomb.png", "too many pixels", 2}, {"corrupt.jpg", "", 3},
		{"empty.png", "empty file", 4}, {"text.png", "not a recognized image", 6}, {"truncated.jpg", "truncated", 7},
	}
	if len(s.Manifest.Rejected) != len(want) {
		t.Fatalf("rejected %+v", s.Manifest.Rejected)
	}
	for i, w := range want {
		r := s.Manifest.Rejected[i]
		if r.Input != filepath.Join(dir, w.file) || !strings.Contains(r.Reason, w.reason) || r.Reason == "" || *r.Item != w.item {
			t.Errorf("rejected[%d] = %+v (item %d), want %s (item %d) with a reason mentioning %q", i, r, *r.Item, w.file, w.item, w.reason)
		}
	}
	t.Logf("reasons: %+v", s.Manifest.Rejected)
}

// URL items that were not downloaded are rejected with the download's reason.
func TestExtractWithDownloadFailures(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	tsv := filepath.Join(root, "cc.tsv")
	os.WriteFile(tsv, []byte("one\thttp://127.0.0.1:1/a.jpg\ntwo\thttp://127.0.0.1:1/b.jpg\n"), 0o644)
	writeImage(t, datasets.ImageFile(root, 1), 4, 40, 40)
	sum, err := Run(context.Background(), Options{Dataset: "conceptual", Input: tsv, CLIP: model, Out: filepath.Join(root, "s"), Device: gotch.CPU, Stderr: io.Discard,
		Download: &datasets.DownloadOptions{Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, filepath.Join(root, "s"))
	if sum.Images != 1 || len(s.Manifest.Rejected) != 1 || !strings.HasPrefix(s.Manifest.Rejected[0].Reason, "download failed: ") {
		t.Fatalf("summary %+v rejected %+v", sum, s.Manifest.Rejected)
	}
}
