package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/clipcap/clipcap/data/imageproc/imagebomb"
)

// ReadConfig reports every fixture's decoded size from its header alone.
func TestReadConfigMatchesDecode(t *testing.T) {
	files, _ := filepath.Glob("testdata/in/*")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	size := regexp.MustCompile(`_(\d+)x(\d+)\.`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ReadConfig(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		im, err := Decode(data, f)
		if err != nil {
			t.Fatal(err)
		}
		if c.Width != im.Width || c.Height != im.Height || c.DecodeBytes < int64(len(im.Pix)+4*len(im.PixI)) {
			t.Errorf("%s: header %+v, decoded %dx%d with %d bytes", f, c, im.Width, im.Height, len(im.Pix)+4*len(im.PixI))
		}
		if m := size.FindStringSubmatch(f); m != nil {
			if w, _ := strconv.Atoi(m[1]); w != c.Width && !bytes.Contains([]byte(f), []byte("exif")) {
				t.Errorf("%s: width %d", f, c.Width)
			}
		}
	}
	for _, bad := range []struct {
		data []byte
		want error
	}{{nil, ErrEmpty}, {[]byte("hello"), ErrNotImage}, {[]byte("\x89PNG\r\n\x1a\n\x00\x00"), ErrTruncated}} {
		if _, err := ReadConfig(bad.data); !errors.Is(err, bad.want) {
			t.Errorf("ReadConfig(%q): %v, want %v", bad.data, err, bad.want)
		}
	}
}

// A decompression bomb is refused from its header: ErrTooManyPixels, and
// almost nothing allocated (the declared 13000x13000 would be GBs).
func TestBombsRefusedBeforeAllocating(t *testing.T) {
	d := Decoder{MaxPixels: UntrustedMaxPixels}
	jpegBomb, err := imagebomb.JPEG(13000, 13000)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"bomb.png": imagebomb.PNG(13000, 13000, 16, imagebomb.RGBA), "bomb.jpg": jpegBomb} {
		c, err := ReadConfig(data)
		if err != nil || c.Width != 13000 || c.Height != 13000 {
			t.Fatalf("%s: header %+v %v", name, c, err)
		}
		if _, err := d.Check(data, name); !errors.Is(err, ErrTooManyPixels) {
			t.Errorf("%s: Check: %v, want ErrTooManyPixels", name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = d.Decode(data, name)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooManyPixels) {
			t.Errorf("%s: Decode: %v, want ErrTooManyPixels", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: refusing took %d bytes", name, n)
		}
	}
}

// Go's 16-bit and 8-bit image types convert without a per-pixel At call
// (which allocates a boxed colour for each pixel), to the same bytes.
func TestFromGoWithoutPerPixelAllocs(t *testing.T) {
	const w, h = 64, 48
	n64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	g16 := image.NewGray16(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA64{uint16(x * 1000), uint16(y * 1300), uint16((x + y) * 500), uint16(x*y*20 + 7)}
			n64.SetNRGBA64(x, y, c)
			g16.SetGray16(x, y, color.Gray16{uint16(x*y*17 + x)})
		}
	}
	for _, tc := range []struct {
		g    image.Image
		mode Mode
	}{{n64, ModeRGBA}, {n64, ModeRGB}, {n64, ModeLA}, {g16, ModeL}, {n64, ModeL}} {
		got := fromGo(tc.g, tc.mode)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, b, a := tc.g.At(x, y).(interface{ RGBA() (r, g, b, a uint32) }).RGBA()
				if nc, ok := tc.g.At(x, y).(color.NRGBA64); ok { // straight, not premultiplied
					r, g, b, a = uint32(nc.R), uint32(nc.G), uint32(nc.B), uint32(nc.A)
				}
				want := map[Mode][]uint8{ModeRGBA: {uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)},
					ModeRGB: {uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}, ModeLA: {uint8(r >> 8), uint8(a >> 8)}, ModeL: {uint8(r >> 8)}}[tc.mode]
				ch := tc.mode.Channels()
				if px := got.Pix[(y*w+x)*ch : (y*w+x+1)*ch]; !bytes.Equal(px, want) {
					t.Fatalf("%T as %s at %d,%d: %v, want %v", tc.g, tc.mode, x, y, px, want)
				}
			}
		}
		if allocs := testing.AllocsPerRun(3, func() { fromGo(tc.g, tc.mode) }); allocs > 2 {
			t.Errorf("%T as %s: %.0f allocations for %d pixels", tc.g, tc.mode, allocs, w*h)
		}
	}
	im, ok := greyI(g16)
	if !ok || im.PixI[5*w+7] != int32(g16.Gray16At(7, 5).Y) {
		t.Errorf("greyI: %v", ok)
	}
}
