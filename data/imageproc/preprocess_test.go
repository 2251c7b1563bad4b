package imageproc

import (
	"encoding/binary"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reference data comes from testdata/gen.py (Pillow 9.4 +
// torchvision 0.14): for each input and n_px, PIL's mode after open and the
// RGB crop of Resize(BICUBIC) + CenterCrop + convert("RGB").
type refCase struct {
	Input string `json:"input"`
	NPx   int    `json:"n_px"`
	Mode  string `json:"mode"`
	Want  string `json:"want"`
}

func loadCases(t testing.TB) []refCase {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cs []refCase
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs) < 40 {
		t.Fatalf("only %d reference cases", len(cs))
	}
	return cs
}

// readWant loads an expected crop stored as an 8-bit RGB PNG.
func readWant(t *testing.T, name string) (int, []uint8) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata/want", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	rgba, ok := g.(*image.RGBA)
	if !ok {
		t.Fatalf("%s: decoded as %T, want opaque RGB", name, g)
	}
	n := rgba.Rect.Dx()
	out := make([]uint8, 0, n*n*3)
	for i := 0; i < len(rgba.Pix); i += 4 {
		out = append(out, rgba.Pix[i:i+3]...)
	}
	return n, out
}

func TestCropMatchesPIL(t *testing.T) {
	modes := map[string]bool{}
	for _, c := range loadCases(t) {
		t.Run(c.Input+"/"+itoa(c.NPx), func(t *testing.T) {
			im, err := DecodeFile(filepath.Join("testdata/in", c.Input))
			if err != nil {
				t.Fatal(err)
			}
			if string(im.Mode) != c.Mode {
				t.Fatalf("mode %s, PIL opens it as %s", im.Mode, c.Mode)
			}
			modes[c.Mode] = true
			got, err := NewPreprocessor(c.NPx).Crop(im)
			if err != nil {
				t.Fatal(err)
			}
			n, want := readWant(t, c.Want)
			if n != c.NPx || len(got) != len(want) {
				t.Fatalf("crop has %d bytes, want %d (n=%d)", len(got), len(want), n)
			}
			diff, maxd, first := 0, 0, -1
			for i := range got {
				d := int(got[i]) - int(want[i])
				if d < 0 {
					d = -d
				}
				if d != 0 {
					diff++
					if first < 0 {
						first = i
					}
				}
				maxd = max(maxd, d)
			}
			if diff != 0 {
				p := first / 3
				t.Fatalf("%d of %d bytes differ from PIL (max %d); first at x=%d y=%d c=%d: got %d want %d",
					diff, len(got), maxd, p%n, p/n, first%3, got[first], want[first])
			}
		})
	}
	for _, m := range []string{"1", "L", "LA", "RGB", "RGBA", "P", "CMYK", "I"} {
		if !modes[m] {
			t.Errorf("no reference case exercised mode %s", m)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestNormalizeMatchesTorch(t *testing.T) {
	b, err := os.ReadFile("testdata/norm.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 3*256*4 {
		t.Fatalf("norm.bin has %d bytes", len(b))
	}
	// A 256-pixel crop whose pixel v is (v, v, v): Normalize gives
	// channel c's value for byte v at [c*256+v], the layout of norm.bin.
	crop := make([]uint8, 3*256)
	for v := 0; v < 256; v++ {
		crop[3*v], crop[3*v+1], crop[3*v+2] = uint8(v), uint8(v), uint8(v)
	}
	got := Normalize(crop)
	for i := range got {
		want := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if d := math.Abs(float64(got[i] - want)); d > 1e-6 {
			t.Fatalf("channel %d value %d: got %v, torch %v", i/256, i%256, got[i], want)
		}
	}
}

func TestPreprocessFileLayout(t *testing.T) {
	path := "testdata/in/rgb420_640x480.jpg"
	px, err := PreprocessFile(path, 224)
	if err != nil {
		t.Fatal(err)
	}
	_, want := readWant(t, "rgb420_640x480.jpg.224.png")
	if len(px) != 3*224*224 {
		t.Fatalf("got %d values", len(px))
	}
	// CHW: plane c, pixel i holds the normalized byte want[3*i+c].
	for _, i := range []int{0, 1, 224, 224*224 - 1, 12345} {
		for c := 0; c < 3; c++ {
			w := (float32(want[3*i+c])/255 - Mean[c]) / Std[c]
			if px[c*224*224+i] != w {
				t.Fatalf("pixel %d channel %d: got %v want %v", i, c, px[c*224*224+i], w)
			}
		}
	}
}

func TestResizedSizeAndOffsets(t *testing.T) {
	cases := []struct{ w, h, n, ow, oh, x0, y0 int }{
		{640, 480, 224, 298, 224, 37, 0},
		{480, 640, 224, 224, 298, 0, 37},
		{224, 224, 224, 224, 224, 0, 0},
		{50, 37, 224, 302, 224, 39, 0},   // 224*50/37 = 302.7 -> 302
		{225, 401, 224, 224, 399, 0, 88}, // (399-224)/2 = 87.5 -> 88 (even)
		{700, 90, 288, 2240, 288, 976, 0},
		{101, 100, 224, 226, 224, 1, 0}, // (226-224)/2 = 1
		{103, 100, 224, 230, 224, 3, 0},
		{227, 224, 224, 227, 224, 2, 0}, // 1.5 -> 2
		{229, 224, 224, 229, 224, 2, 0}, // 2.5 -> 2 (half to even)
	}
	for _, c := range cases {
		ow, oh := ResizedSize(c.w, c.h, c.n)
		x0, y0 := cropOffset(ow, c.n), cropOffset(oh, c.n)
		if ow != c.ow || oh != c.oh || x0 != c.x0 || y0 != c.y0 {
			t.Errorf("%dx%d@%d: got %dx%d +%d+%d, want %dx%d +%d+%d",
				c.w, c.h, c.n, ow, oh, x0, y0, c.ow, c.oh, c.x0, c.y0)
		}
	}
}

func TestCropRejectsBadInput(t *testing.T) {
	p := NewPreprocessor(224)
	if _, err := p.Crop(&Image{Mode: ModeRGB, Width: 10, Height: 10, Pix: make([]uint8, 5)}); err == nil {
		t.Error("short pixel buffer accepted")
	}
	if _, err := p.Crop(&Image{Mode: ModeP, Width: 1, Height: 1, Pix: []uint8{0}}); err == nil {
		t.Error("palette image without palette accepted")
	}
	if _, err := NewPreprocessor(0).Crop(&Image{Mode: ModeL, Width: 1, Height: 1, Pix: []uint8{0}}); err == nil {
		t.Error("n_px 0 accepted")
	}
	if _, err := p.Crop(&Image{Mode: "YCbCr", Width: 1, Height: 1, Pix: []uint8{0, 0, 0}}); err == nil ||
		!strings.Contains(err.Error(), "YCbCr") {
		t.Errorf("unknown mode: %v", err)
	}
}
