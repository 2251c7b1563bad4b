package train

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/data/featstore"
)

// Empty and blank captions (a folder image without a sidecar, an image
// whose caption was lost) are left out at load with a count in the log, so
// no row — and no batch — is without target tokens.
func TestEmptyCaptionsDropped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	w, err := featstore.Create(dir, featstore.Meta{CLIPModel: "synthetic", EmbedDim: clipDim, ShardInputs: 64})
	if err != nil {
		t.Fatal(err)
	}
	emb := make([]float32, clipDim)
	for k := 0; k < 24; k++ {
		for i := range emb {
			emb[i] = float32(math.Sin(float64(k*clipDim + i)))
		}
		text := classCaptions[k%len(classCaptions)]
		switch k % 3 {
		case 1:
			text = ""
		case 2:
			text = " \t"
		}
		if err := w.Add(emb, []featstore.Caption{{ImageID: fmt.Sprint(k), Caption: text, Split: "train"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(dir, t.TempDir())
	c.ValSplit, c.Epochs, c.SampleCaptions = "", 1, 0
	var log bytes.Buffer
	tr, err := New(c, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Train.Len() != 8 || tr.Train.Dropped != 16 {
		t.Fatalf("%d captions kept, %d dropped; want 8 and 16", tr.Train.Len(), tr.Train.Dropped)
	}
	for i, toks := range tr.Train.Tokens {
		if len(toks) == 0 || strings.TrimSpace(tr.Train.Captions[i].Caption) == "" {
			t.Fatalf("row %d (%q) kept without tokens", i, tr.Train.Captions[i].Caption)
		}
	}
	if !strings.Contains(log.String(), `dropped 16 empty captions of split "train"`) {
		t.Fatalf("log does not count the dropped captions:\n%s", log.String())
	}
}
