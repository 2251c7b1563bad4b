package randmodel

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/generate"
)

func gradient(w, h int, phase uint8) *imageproc.Image {
	im := &imageproc.Image{Mode: imageproc.ModeRGB, Width: w, Height: h, Pix: make([]uint8, w*h*3)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			im.Pix[i], im.Pix[i+1], im.Pix[i+2] = uint8(x*5)+phase, uint8(y*7), phase*3
		}
	}
	return im
}

// The written directory loads through caption.Load, seeded writes give the
// same captions, and captions depend on the image.
func TestWriteLoadsAndIsDeterministic(t *testing.T) {
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	defer runtime.UnlockOSThread()
	var runs [2][]caption.Caption
	for r := range runs {
		dir := t.TempDir()
		if err := Write(dir, Tiny()); err != nil {
			t.Fatal(err)
		}
		c, err := caption.Load(dir, caption.Options{Device: gotch.CPU})
		if err != nil {
			t.Fatal(err)
		}
		if c.Tok.VocabSize() != 257 || c.CLIP == nil {
			t.Fatalf("vocab %d, clip %v", c.Tok.VocabSize(), c.CLIP != nil)
		}
		ims := []*imageproc.Image{gradient(40, 30, 0), gradient(40, 30, 90), gradient(40, 30, 200)}
		runs[r], err = c.FromImages(ims, generate.Options{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		t.Fatalf("two writes with one seed differ:\n%v\n%v", runs[0], runs[1])
	}
	if reflect.DeepEqual(runs[0][0].Tokens, runs[0][1].Tokens) && reflect.DeepEqual(runs[0][1].Tokens, runs[0][2].Tokens) {
		t.Errorf("three different images got one caption %v: the model ignores its input", runs[0][0].Tokens)
	}
	for _, c := range runs[0] {
		if len(c.Tokens) == 0 || len(c.Tokens) > 12 {
			t.Errorf("caption %v: want 1..12 tokens (max_tokens 12)", c.Tokens)
		}
	}
	t.Logf("captions: %q %q %q", runs[0][0].Text, runs[0][1].Text, runs[0][2].Text)
}

func TestWriteRejectsBadSpecs(t *testing.T) {
	s := Tiny()
	s.Vocab = 300
	if err := Write(t.TempDir(), s); err == nil {
		t.Error("vocab mismatch accepted")
	}
	s = Tiny()
	s.CLIP.Heads = 2
	if err := Write(t.TempDir(), s); err == nil {
		t.Error("heads that do not load back accepted")
	}
}

func TestTokenizerVocabSize(t *testing.T) {
	dir := t.TempDir()
	if err := writeTokenizer(dir, 1000); err != nil {
		t.Fatal(err)
	}
	c, err := loadTok(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c != 1000 {
		t.Fatalf("vocab size %d, want 1000", c)
	}
}

func loadTok(dir string) (int, error) {
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return 0, err
	}
	if id, ok := tok.TokenID("."); !ok || id != 13 {
		return 0, fmt.Errorf("\".\" has id %d, want GPT-2's 13", id)
	}
	return tok.VocabSize(), nil
}
