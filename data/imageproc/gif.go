package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
)

// gifHeader is what PIL's GifImagePlugin (9.4) decides the first frame's
// mode and canvas from. It is read directly because Go's decoder replaces
// the transparent palette entry's colour, which PIL keeps.
type gifHeader struct {
	screenW, screenH int
	palette          []byte // the first frame's colour table (local, else global)
	transparent      int    // transparent index, -1 if none
	frame            image.Rectangle
}

func readGIFHeader(data []byte) (gifHeader, error) {
	h := gifHeader{transparent: -1}
	if len(data) < 13 {
		return h, ErrTruncated
	}
	h.screenW, h.screenH = int(le16(data[6:])), int(le16(data[8:]))
	p := 13
	var global []byte
	if flags := data[10]; flags&0x80 != 0 {
		n := 3 << (flags&7 + 1)
		if p+n > len(data) {
			return h, ErrTruncated
		}
		global = data[p : p+n]
		p += n
	}
	for p < len(data) {
		switch data[p] {
		case 0x21: // extension
			if p+2 > len(data) {
				return h, ErrTruncated
			}
			label := data[p+1]
			p += 2
			first := true
			for {
				if p >= len(data) {
					return h, ErrTruncated
				}
				n := int(data[p])
				if p+1+n > len(data) {
					return h, ErrTruncated
				}
				if label == 0xF9 && first && n >= 4 {
					if data[p+1]&1 != 0 {
						h.transparent = int(data[p+4])
					} else {
						h.transparent = -1
					}
				}
				first = false
				p += 1 + n
				if n == 0 {
					break
				}
			}
		case 0x2C: // image descriptor
			if p+10 > len(data) {
				return h, ErrTruncated
			}
			x, y := int(le16(data[p+1:])), int(le16(data[p+3:]))
			w, hh := int(le16(data[p+5:])), int(le16(data[p+7:]))
			h.frame = image.Rect(x, y, x+w, y+hh)
			h.palette = global
			if flags := data[p+9]; flags&0x80 != 0 {
				n := 3 << (flags&7 + 1)
				if p+10+n > len(data) {
					return h, ErrTruncated
				}
				h.palette = data[p+10 : p+10+n]
			}
			return h, nil
		case 0x3B:
			return h, fmt.Errorf("%w: GIF has no image", ErrCorrupt)
		default:
			return h, fmt.Errorf("%w: unknown GIF block 0x%02x", ErrCorrupt, data[p])
		}
	}
	return h, ErrTruncated
}

// paletteNeeded is GifImagePlugin._is_palette_needed: a colour table that
// is the identity grey ramp makes the image mode L instead of P.
func paletteNeeded(p []byte) bool {
	for i := 0; i+2 < len(p); i += 3 {
		v := byte(i / 3)
		if p[i] != v || p[i+1] != v || p[i+2] != v {
			return true
		}
	}
	return false
}

func (d Decoder) decodeGIF(data []byte) (*Image, error) {
	h, err := readGIFHeader(data)
	if err != nil {
		return nil, err
	}
	// PIL grows the canvas to hold a frame that extends past the screen.
	w, ht := max(h.screenW, h.frame.Max.X), max(h.screenH, h.frame.Max.Y)
	g, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, goDecodeErr(err)
	}
	p, ok := g.(*image.Paletted)
	if !ok {
		return nil, fmt.Errorf("%w: GIF decoded as %T", ErrCorrupt, g)
	}
	im := &Image{Mode: ModeL, Width: w, Height: ht, Pix: make([]uint8, w*ht)}
	if h.transparent >= 0 {
		for i := range im.Pix {
			im.Pix[i] = uint8(h.transparent)
		}
	}
	b := p.Bounds().Intersect(image.Rect(0, 0, w, ht))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		src := p.Pix[p.PixOffset(b.Min.X, y):p.PixOffset(b.Max.X, y)]
		copy(im.Pix[y*w+b.Min.X:], src)
	}
	if paletteNeeded(h.palette) {
		im.Mode = ModeP
		im.Palette = greyRamp()
		for i := 0; 3*i+2 < len(h.palette) && i < 256; i++ {
			im.Palette[i] = [3]uint8{h.palette[3*i], h.palette[3*i+1], h.palette[3*i+2]}
		}
	}
	return im, nil
}
