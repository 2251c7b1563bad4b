package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Curve is a named loss series over optimizer steps.
type Curve struct {
	Name   string
	Color  color.RGBA
	Points [][2]float64 // (step, loss)
}

// LossCurves reads the train and validation loss curves of a run. A step
// logged twice (a run killed after logging and resumed) keeps its last value.
func LossCurves(runDir string) ([]Curve, error) {
	recs, err := ReadMetrics(filepath.Join(runDir, MetricsFile))
	if err != nil {
		return nil, err
	}
	train, val := map[int]float64{}, map[int]float64{}
	for _, r := range recs {
		switch {
		case r.Type == "train" && r.Loss != nil:
			train[r.Step] = *r.Loss
		case r.Type == "val" && r.ValLoss != nil:
			val[r.Step] = *r.ValLoss
		}
	}
	if len(train) == 0 && len(val) == 0 {
		return nil, fmt.Errorf("%s: no loss records", filepath.Join(runDir, MetricsFile))
	}
	pts := func(m map[int]float64) [][2]float64 {
		var out [][2]float64
		for s, v := range m {
			out = append(out, [2]float64{float64(s), v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
		return out
	}
	return []Curve{
		{Name: "train loss", Color: color.RGBA{31, 119, 180, 255}, Points: pts(train)},
		{Name: "val loss", Color: color.RGBA{214, 39, 40, 255}, Points: pts(val)},
	}, nil
}

// Plot writes the run's loss curves to out: SVG, or PNG when out ends in .png.
func Plot(runDir, out string) error {
	curves, err := LossCurves(runDir)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch strings.ToLower(filepath.Ext(out)) {
	case ".svg":
		writeSVG(&buf, curves)
	case ".png":
		if err := writePNG(&buf, curves); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unknown extension (use .svg or .png)", out)
	}
	return writeFile(out, buf.Bytes())
}

const plotW, plotH, margin = 800, 480, 60

// frame maps (step, loss) into pixel coordinates of the plot area.
type frame struct{ x0, x1, y0, y1 float64 }

func newFrame(curves []Curve) frame {
	f := frame{math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)}
	for _, c := range curves {
		for _, p := range c.Points {
			f.x0, f.x1 = math.Min(f.x0, p[0]), math.Max(f.x1, p[0])
			f.y0, f.y1 = math.Min(f.y0, p[1]), math.Max(f.y1, p[1])
		}
	}
	f.y0 = math.Min(0, f.y0)
	if f.x1 <= f.x0 {
		f.x1 = f.x0 + 1
	}
	if f.y1 <= f.y0 {
		f.y1 = f.y0 + 1
	}
	return f
}

func (f frame) px(p [2]float64) (float64, float64) {
	x := margin + (p[0]-f.x0)/(f.x1-f.x0)*(plotW-2*margin)
	y := plotH - margin - (p[1]-f.y0)/(f.y1-f.y0)*(plotH-2*margin)
	return x, y
}

func writeSVG(w io.Writer, curves []Curve) {
	f := newFrame(curves)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<path d="M%d %d V%d H%d" fill="none" stroke="black"/>`+"\n", margin, margin, plotH-margin, plotW-margin)
	for i := 0; i <= 4; i++ {
		v := f.y0 + (f.y1-f.y0)*float64(i)/4
		_, y := f.px([2]float64{f.x0, v})
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n", margin-6, y+4, v)
		s := f.x0 + (f.x1-f.x0)*float64(i)/4
		x, _ := f.px([2]float64{s, f.y0})
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n", x, plotH-margin+18, s)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">step</text>`+"\n", plotW/2, plotH-12)
	for i, c := range curves {
		col := fmt.Sprintf("rgb(%d,%d,%d)", c.Color.R, c.Color.G, c.Color.B)
		if len(c.Points) > 0 {
			var d strings.Builder
			for j, p := range c.Points {
				x, y := f.px(p)
				if j == 0 {
					fmt.Fprintf(&d, "M%.1f %.1f", x, y)
				} else {
					fmt.Fprintf(&d, " L%.1f %.1f", x, y)
				}
			}
			fmt.Fprintf(w, `<path d="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", d.String(), col)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", plotW-margin-100, margin+16*i, col, c.Name)
	}
	fmt.Fprintln(w, "</svg>")
}

func writePNG(w io.Writer, curves []Curve) error {
	f := newFrame(curves)
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	black := color.RGBA{0, 0, 0, 255}
	line(img, margin, margin, margin, plotH-margin, black)
	line(img, margin, plotH-margin, plotW-margin, plotH-margin, black)
	text := func(x, y int, s string, c color.RGBA) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	for i := 0; i <= 4; i++ {
		v := f.y0 + (f.y1-f.y0)*float64(i)/4
		_, y := f.px([2]float64{f.x0, v})
		text(4, int(y)+4, fmt.Sprintf("%.3g", v), black)
		s := f.x0 + (f.x1-f.x0)*float64(i)/4
		x, _ := f.px([2]float64{s, f.y0})
		text(int(x)-10, plotH-margin+18, fmt.Sprintf("%.0f", s), black)
	}
	text(plotW/2-14, plotH-12, "step", black)
	for i, c := range curves {
		for j := 1; j < len(c.Points); j++ {
			xa, ya := f.px(c.Points[j-1])
			xb, yb := f.px(c.Points[j])
			line(img, int(xa), int(ya), int(xb), int(yb), c.Color)
		}
		text(plotW-margin-100, margin+16*i, c.Name, c.Color)
	}
	return png.Encode(w, img)
}

// line draws with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if 2*e >= dy {
			e += dy
			x0 += sx
		}
		if 2*e <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
