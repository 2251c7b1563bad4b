// Package demo makes the embedded demo: a synthetic captioning set of
// images with coloured shapes (colour, shape, count and position vary) and
// captions that describe them, plus a seeded random CLIP-architecture image
// tower for machines without pretrained weights.
package demo

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

var (
	colours = []struct {
		name string
		rgb  color.RGBA
	}{
		{"red", color.RGBA{220, 40, 40, 255}},
		{"green", color.RGBA{40, 170, 60, 255}},
		{"blue", color.RGBA{40, 70, 220, 255}},
		{"yellow", color.RGBA{235, 210, 40, 255}},
	}
	shapes    = []string{"circle", "square", "triangle"}
	counts    = []string{"one", "two", "three"}
	positions = []string{"left", "right"}
)

// Item is one image with its reference captions.
type Item struct {
	Image    string   `json:"image"`
	Captions []string `json:"captions"`
	Split    string   `json:"split"`
}

// Sizes of the splits.
type Sizes struct{ Train, Val, Test int }

// Generate writes size×size PNG images under dir/images and dir/demo.jsonl:
// one line per image with its split and three reference captions (the
// format `clipcap extract --dataset jsonl` reads). The same seed gives the
// same files.
func Generate(dir string, n Sizes, size int, seed int64) error {
	rng := rand.New(rand.NewSource(seed))
	if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
		return err
	}
	idx := 0
	var lines []byte
	for _, split := range []struct {
		name string
		n    int
	}{{"train", n.Train}, {"val", n.Val}, {"test", n.Test}} {
		for i := 0; i < split.n; i++ {
			c, s, k, p := rng.Intn(len(colours)), rng.Intn(len(shapes)), rng.Intn(len(counts)), rng.Intn(len(positions))
			img := draw(rng, size, c, s, k+1, p)
			name := fmt.Sprintf("images/%s_%05d.png", split.name, idx)
			idx++
			if err := writePNG(filepath.Join(dir, name), img); err != nil {
				return err
			}
			item := Item{Image: name, Captions: captions(c, s, k, p), Split: split.name}
			b, _ := json.Marshal(item)
			lines = append(append(lines, b...), '\n')
		}
	}
	return os.WriteFile(filepath.Join(dir, "demo.jsonl"), lines, 0o644)
}

// captions describes an image three ways, as annotators would.
func captions(c, s, k, p int) []string {
	shape := shapes[s]
	if k > 0 {
		shape += "s"
	}
	col, cnt, pos := colours[c].name, counts[k], positions[p]
	article := "a"
	if k == 0 {
		cnt = article
	}
	return []string{
		fmt.Sprintf("%s %s %s on the %s.", cap1(cnt), col, shape, pos),
		fmt.Sprintf("There %s %s %s %s on the %s side.", isAre(k), cnt, col, shape, pos),
		fmt.Sprintf("A picture of %s %s %s on the %s.", cnt, col, shape, pos),
	}
}

func isAre(k int) string {
	if k == 0 {
		return "is"
	}
	return "are"
}

func cap1(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// draw places count shapes of one colour in the left or right half of a
// light, slightly noisy background.
func draw(rng *rand.Rand, size, c, s, count, pos int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	bg := 225 + rng.Intn(20)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			v := uint8(bg + rng.Intn(8) - 4)
			img.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	r := float64(size) / 10
	half := float64(size) / 2
	x0 := 0.0
	if pos == 1 {
		x0 = half
	}
	// Stack the shapes vertically in their half, jittered.
	for i := 0; i < count; i++ {
		cy := (float64(i) + 0.5) * float64(size) / float64(count)
		if count == 1 {
			cy = half + (rng.Float64()-0.5)*half*0.5
		}
		cx := x0 + half/2 + (rng.Float64()-0.5)*half*0.3
		fill(img, s, cx, cy, r*(0.85+0.3*rng.Float64()), colours[c].rgb)
	}
	return img
}

func fill(img *image.RGBA, shape int, cx, cy, r float64, col color.RGBA) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			inside := false
			switch shape {
			case 0:
				inside = dx*dx+dy*dy <= r*r
			case 1:
				inside = math.Abs(dx) <= r*0.9 && math.Abs(dy) <= r*0.9
			case 2:
				inside = dy <= r && dy >= -r && math.Abs(dx) <= (dy+r)/2
			}
			if inside {
				img.SetRGBA(x, y, col)
			}
		}
	}
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
