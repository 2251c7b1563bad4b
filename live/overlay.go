package live

import (
	"image"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Text is drawn with the 7x13 bitmap font of x/image (no font files, no
// ffmpeg drawtext), scaled by an integer factor so it stays legible on
// large frames, white on a darkened band.
const (
	glyphW, glyphH, glyphAscent = 7, 13, 11
)

// DrawOverlay burns caption (bottom, wrapped) and status (top left) into an
// RGB24 frame in place.
func DrawOverlay(pix []byte, w, h int, caption, status string) {
	if w <= 0 || h <= 0 || len(pix) < w*h*3 {
		return
	}
	s := max(1, h/360)
	pad := 4 * s
	lineH := (glyphH + 2) * s
	if status != "" {
		drawBlock(pix, w, h, []string{status}, pad, pad, s, lineH)
	}
	if caption != "" {
		cols := max(1, (w-2*pad)/(glyphW*s))
		lines := wrap(caption, cols)
		y := h - pad - len(lines)*lineH
		drawBlock(pix, w, h, lines, pad, max(y, 0), s, lineH)
	}
}

// drawBlock darkens the band behind lines, then draws them from (x, y).
func drawBlock(pix []byte, w, h int, lines []string, x, y, s, lineH int) {
	maxLen := 0
	for _, l := range lines {
		maxLen = max(maxLen, len([]rune(l)))
	}
	x0, y0 := max(x-2*s, 0), max(y-s, 0)
	x1, y1 := min(x+maxLen*glyphW*s+2*s, w), min(y+len(lines)*lineH+s, h)
	for yy := y0; yy < y1; yy++ {
		row := pix[3*(yy*w) : 3*(yy*w+w)]
		for xx := 3 * x0; xx < 3*x1; xx++ {
			row[xx] = uint8(int(row[xx]) * 2 / 5)
		}
	}
	for i, l := range lines {
		drawLine(pix, w, h, l, x, y+i*lineH, s)
	}
}

// drawLine renders one line into an alpha mask and blends it in white,
// each mask pixel covering an s x s block.
func drawLine(pix []byte, w, h int, text string, x, y, s int) {
	n := len([]rune(text))
	if n == 0 {
		return
	}
	mask := image.NewAlpha(image.Rect(0, 0, n*glyphW, glyphH))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: basicfont.Face7x13, Dot: fixed.P(0, glyphAscent)}
	d.DrawString(text)
	mw := mask.Rect.Dx()
	for my := 0; my < glyphH; my++ {
		for mx := 0; mx < mw; mx++ {
			a := int(mask.Pix[my*mask.Stride+mx])
			if a == 0 {
				continue
			}
			for dy := 0; dy < s; dy++ {
				py := y + my*s + dy
				if py < 0 || py >= h {
					continue
				}
				for dx := 0; dx < s; dx++ {
					px := x + mx*s + dx
					if px < 0 || px >= w {
						continue
					}
					i := 3 * (py*w + px)
					for c := 0; c < 3; c++ {
						pix[i+c] = uint8((255*a + int(pix[i+c])*(255-a)) / 255)
					}
				}
			}
		}
	}
}

// wrap splits text into lines of at most cols runes, at spaces when it can.
func wrap(text string, cols int) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(text) {
		wr := []rune(word)
		for len(wr) > cols { // a word longer than a line is cut
			if len(cur) > 0 {
				lines, cur = append(lines, string(cur)), nil
			}
			lines, wr = append(lines, string(wr[:cols])), wr[cols:]
		}
		switch {
		case len(cur) == 0:
			cur = wr
		case len(cur)+1+len(wr) <= cols:
			cur = append(append(cur, ' '), wr...)
		default:
			lines, cur = append(lines, string(cur)), wr
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}
