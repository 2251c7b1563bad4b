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

	"github.com/clipcap/clipcap/data/imageproc/imagebomb"
)

// Images under PIL's pixel limit but over the untrusted one (13000x13000:
// 169 Mpx, several GB once decoded) are refused from their header.
func TestExtractRefusesImagesOverMaxPixels(t *testing.T) {
	root := t.TempDir()
	model := writeCLIP(t, root, tinyConfig)
	dir := filepath.Join(root, "imgs")
	writeImage(t, filepath.Join(dir, "good.png"), 1, 50, 40)
	if err := os.WriteFile(filepath.Join(dir, "bomb.png"), imagebomb.PNG(13000, 13000, 16, imagebomb.RGBA), 0o644); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "data.jsonl")
	os.WriteFile(input, []byte("{\"image\": \"bomb.png\", \"caption\": \"b\"}\n{\"image\": \"good.png\", \"caption\": \"g\"}\n"), 0o644)
	for i, tc := range []struct {
		max  int
		want string
	}{{0, "13000x13000 = 169000000 pixels exceeds limit of 40000000"}, {100, "exceeds limit of 100"}} {
		out := filepath.Join(root, fmt.Sprint("store", i))
		sum, err := Run(context.Background(), Options{Dataset: "jsonl", Input: input, CLIP: model, Out: out, Batch: 4,
			Device: gotch.CPU, Stderr: io.Discard, MaxPixels: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		s := openStore(t, out)
		if tc.max == 0 && (sum.Images != 1 || len(s.Manifest.Rejected) != 1) {
			t.Fatalf("max %d: summary %+v, rejected %+v", tc.max, sum, s.Manifest.Rejected)
		}
		if r := s.Manifest.Rejected[0]; !strings.Contains(r.Reason, tc.want) {
			t.Errorf("max %d: bomb rejected with %q, want %q", tc.max, r.Reason, tc.want)
		}
	}
}
