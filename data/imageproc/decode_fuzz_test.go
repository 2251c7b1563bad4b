package imageproc

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/metrics"
	"testing"
)

// fuzzMaxPixels caps decoding while fuzzing: large enough for every seed
// (640x480 is the biggest), small enough that a bomb is cheap to refuse.
const fuzzMaxPixels = 1 << 20

// FuzzDecode feeds every format's decoder (sniffed from the bytes) with the
// test images and the files PIL refuses as seeds. Invariants: no panic (cgo
// libjpeg included); an error wraps one of the package's classes; a decoded
// image is well formed and within the pixel cap; and the heap the decoder
// allocates is bounded by the pixel cap, not by sizes a header declares.
func FuzzDecode(f *testing.F) {
	for _, glob := range []string{"testdata/in/*", "testdata/errors/*"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	classes := []error{ErrEmpty, ErrNotImage, ErrTruncated, ErrTooManyPixels, ErrCorrupt}
	// 16-bit RGBA is 8 bytes a pixel; allow a few working copies of it.
	limit := uint64(64*fuzzMaxPixels + 64*1024)
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocated()
		im, err := Decoder{MaxPixels: fuzzMaxPixels}.Decode(data, "fuzz")
		if n := heapAllocated() - before; n > limit+64*uint64(len(data)) {
			t.Fatalf("%d-byte input allocated %d MiB (err %v)", len(data), n>>20, err)
		}
		if err != nil {
			for _, c := range classes {
				if errors.Is(err, c) {
					return
				}
			}
			t.Fatalf("error %q wraps none of the package's error classes", err)
		}
		if verr := im.validate(); verr != nil {
			t.Fatalf("decoded a malformed image: %v", verr)
		}
		if im.Width*im.Height > fuzzMaxPixels {
			t.Fatalf("decoded %dx%d past the %d-pixel cap", im.Width, im.Height, fuzzMaxPixels)
		}
	})
}

// heapAllocated is the heap allocated so far, cumulative. runtime/metrics
// rather than ReadMemStats: it does not stop the world for every input.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
