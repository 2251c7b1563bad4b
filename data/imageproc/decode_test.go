package imageproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/errors holds files PIL refuses (gen.py checks that it does).
func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		file string
		want error
	}{
		{"truncated.jpg", ErrTruncated},
		{"truncated.png", ErrTruncated},
		{"random.bin", ErrNotImage},
		{"empty.jpg", ErrEmpty},
		{"bomb.jpg", ErrTooManyPixels},
	}
	for _, c := range cases {
		path := filepath.Join("testdata/errors", c.file)
		_, err := DecodeFile(path)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.file, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", c.file, err)
		}
	}
}

func TestDecodeCorruptAndLimits(t *testing.T) {
	jpg, err := os.ReadFile("testdata/in/rgb420_640x480.jpg")
	if err != nil {
		t.Fatal(err)
	}
	// A JPEG signature followed by garbage: libjpeg's error must come back
	// as an error, not a crash.
	bad := append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02}, make([]byte, 100)...)
	if _, err := Decode(bad, "bad.jpg"); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "bad.jpg") {
		t.Errorf("garbage JPEG: %v", err)
	}
	if _, err := (Decoder{MaxPixels: 640*480 - 1}).Decode(jpg, "x.jpg"); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("limit one below the size: %v", err)
	}
	if _, err := (Decoder{MaxPixels: 640 * 480}).Decode(jpg, "x.jpg"); err != nil {
		t.Errorf("limit equal to the size: %v", err)
	}
	gif := []byte("GIF89a\x10\x00\x10\x00\x00\x00\x00;")
	if _, err := Decode(gif, "empty.gif"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GIF without frames: %v", err)
	}
	png, err := os.ReadFile("testdata/in/rgb_333x251.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Decoder{MaxPixels: 1000}).Decode(png, "p.png"); !errors.Is(err, ErrTooManyPixels) {
		t.Errorf("PNG over the limit: %v", err)
	}
}

func TestPipelineOrderAndErrors(t *testing.T) {
	inputs := []Input{
		{Name: "testdata/in/rgb420_640x480.jpg"},
		{Name: "testdata/errors/truncated.jpg"},
		{Name: "testdata/in/p_260x200.png"},
		{Name: "testdata/does-not-exist.jpg"},
		{Name: "mem.bin", Data: []byte("not an image at all")},
		{Name: "testdata/in/tall_100x500.png"},
	}
	pl := &Pipeline{Pre: NewPreprocessor(224), Workers: 3}
	res, err := pl.Run(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(inputs) {
		t.Fatalf("%d results for %d inputs", len(res), len(inputs))
	}
	wantErr := []error{nil, ErrTruncated, nil, os.ErrNotExist, ErrNotImage, nil}
	for i, r := range res {
		if r.Index != i || r.Name != inputs[i].Name {
			t.Errorf("result %d is for input %d (%s)", i, r.Index, r.Name)
		}
		if wantErr[i] == nil {
			if r.Err != nil {
				t.Errorf("%s: %v", r.Name, r.Err)
				continue
			}
			single, err := PreprocessFile(inputs[i].Name, 224)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Pixels) != len(single) {
				t.Fatalf("%s: %d values, want %d", r.Name, len(r.Pixels), len(single))
			}
			for j := range single {
				if r.Pixels[j] != single[j] {
					t.Fatalf("%s: pipeline differs from PreprocessFile at %d", r.Name, j)
				}
			}
		} else if !errors.Is(r.Err, wantErr[i]) {
			t.Errorf("%s: got %v, want %v", r.Name, r.Err, wantErr[i])
		}
	}
}

func TestPipelineStopsOnCallbackError(t *testing.T) {
	var inputs []Input
	for i := 0; i < 50; i++ {
		inputs = append(inputs, Input{Name: "testdata/in/small_50x37.png"})
	}
	stop := errors.New("stop")
	seen := 0
	pl := &Pipeline{Pre: NewPreprocessor(224), Workers: 4}
	err := pl.Each(context.Background(), inputs, func(r Result) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 3 {
		t.Fatalf("err %v after %d results", err, seen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pl.Each(ctx, inputs, func(Result) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}
