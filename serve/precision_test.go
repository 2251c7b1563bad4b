package serve

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/model/nn"
)

// A model directory's generation.precision (or caption.Options.Precision)
// loads the low-precision weights, and the server captions with them
// exactly as the captioner does.
func TestServeLowPrecision(t *testing.T) {
	dir := t.TempDir()
	spec := randmodel.Tiny()
	spec.Generation.Precision = "int8"
	if err := randmodel.Write(dir, spec); err != nil {
		t.Fatal(err)
	}
	load := func(p string) (*caption.Captioner, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return caption.Load(dir, caption.Options{Device: gotch.CPU, Precision: p})
	}
	c, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Precision != nn.Int8 || !strings.Contains(c.PrecisionNote, "int8") || c.Model.GPT.Head == nil {
		t.Fatalf("config precision int8: loaded %q (%q)", c.Precision, c.PrecisionNote)
	}
	if bf, err := load("bf16"); err != nil || bf.Precision != nn.BF16 {
		t.Fatalf("--precision bf16 over the config's int8: %v %v", bf.Precision, err)
	}
	if _, err := load("fp16"); err == nil || !strings.Contains(err.Error(), "fp16") {
		t.Fatalf("precision fp16: %v", err)
	}
	s, err := New(c, Config{MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); s.Close() })
	hs := srv.URL
	img := pngBytes(t, testImage(2))
	w := want(t, c, img, c.DecodeOptions(spec.Generation))
	a, _ := chat(t, hs, chatBody(dataURL("image/png", img), nil))
	if a.Choices[0].Message.Content != jsonText(w.Text) {
		t.Errorf("int8 server: %q; the int8 captioner: %q", a.Choices[0].Message.Content, w.Text)
	}
}
