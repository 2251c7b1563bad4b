package imageproc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
)

var errUnexpectedEOF = io.ErrUnexpectedEOF

// pngHeader holds what PIL's mode choice depends on, read from the chunks
// directly because Go's decoder folds several PNG types into one Go type
// (e.g. grey+alpha into NRGBA) and extends short palettes with black where
// PIL keeps its grey ramp.
type pngHeader struct {
	width, height  int
	depth, colType int
	plte           []byte // raw PLTE payload, nil if none
}

func readPNGHeader(data []byte) (pngHeader, error) {
	var h pngHeader
	p := 8
	for p+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[p:]))
		typ := string(data[p+4 : p+8])
		if n < 0 || p+8+n > len(data) {
			return h, ErrTruncated
		}
		body := data[p+8 : p+8+n]
		switch typ {
		case "IHDR":
			if n < 13 {
				return h, fmt.Errorf("%w: short IHDR chunk", ErrCorrupt)
			}
			h.width = int(binary.BigEndian.Uint32(body))
			h.height = int(binary.BigEndian.Uint32(body[4:]))
			h.depth, h.colType = int(body[8]), int(body[9])
		case "PLTE":
			h.plte = body
		case "IDAT", "IEND":
			if h.width == 0 {
				return h, fmt.Errorf("%w: PNG without IHDR", ErrCorrupt)
			}
			return h, nil
		}
		p += 12 + n
	}
	return h, ErrTruncated
}

// pngMode is PngImagePlugin's _MODES table (Pillow 9.4).
func pngMode(depth, colType int) (Mode, bool) {
	switch colType {
	case 0:
		switch depth {
		case 1:
			return Mode1, true
		case 2, 4, 8:
			return ModeL, true
		case 16:
			return ModeI, true
		}
	case 2:
		if depth == 8 || depth == 16 {
			return ModeRGB, true
		}
	case 3:
		if depth <= 8 {
			return ModeP, true
		}
	case 4:
		if depth == 8 {
			return ModeLA, true
		}
		if depth == 16 {
			return ModeRGBA, true // PIL: "LA;16B" unpacked into RGBA
		}
	case 6:
		if depth == 8 || depth == 16 {
			return ModeRGBA, true
		}
	}
	return "", false
}

func (d Decoder) decodePNG(data []byte) (*Image, error) {
	h, err := readPNGHeader(data)
	if err != nil {
		return nil, err
	}
	mode, ok := pngMode(h.depth, h.colType)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported PNG bit depth %d with colour type %d", ErrCorrupt, h.depth, h.colType)
	}
	g, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, goDecodeErr(err)
	}
	switch mode {
	case ModeP:
		p, ok := g.(*image.Paletted)
		if !ok {
			return nil, fmt.Errorf("%w: palette PNG decoded as %T", ErrCorrupt, g)
		}
		im := fromPaletted(p)
		im.Palette = greyRamp()
		for i := 0; i < 256 && 3*i+2 < len(h.plte); i++ {
			im.Palette[i] = [3]uint8{h.plte[3*i], h.plte[3*i+1], h.plte[3*i+2]}
		}
		return im, nil
	case ModeI:
		im, ok := greyI(g)
		if !ok {
			return nil, fmt.Errorf("%w: 16-bit grey PNG decoded as %T", ErrCorrupt, g)
		}
		return im, nil
	case Mode1, ModeL:
		im := fromGo(g, ModeL)
		im.Mode = mode // Go scales 1-bit grey to 0/255 as PIL's mode 1 stores it
		return im, nil
	case ModeLA:
		return fromGo(g, ModeLA), nil
	}
	// 16-bit samples are cut to their high byte, like PIL's ";16B" unpackers.
	return fromGo(g, mode), nil
}

// fromGo converts a Go image to mode (L, LA, RGB or RGBA) using
// straight-alpha 8-bit values: the high byte of 16-bit samples, alpha not
// applied. The decoders' own types convert without per-pixel At calls.
func fromGo(g image.Image, mode Mode) *Image {
	if im, ok := fastFromGo(g, mode); ok {
		return im
	}
	b := g.Bounds()
	w, h := b.Dx(), b.Dy()
	ch := mode.Channels()
	im := &Image{Mode: mode, Width: w, Height: h, Pix: make([]uint8, w*h*ch)}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var r, gg, bb, a uint8
			switch c := g.At(x, y).(type) {
			case color.Gray:
				r, gg, bb, a = c.Y, c.Y, c.Y, 255
			case color.Gray16:
				v := uint8(c.Y >> 8)
				r, gg, bb, a = v, v, v, 255
			case color.NRGBA:
				r, gg, bb, a = c.R, c.G, c.B, c.A
			case color.NRGBA64:
				r, gg, bb, a = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8), uint8(c.A>>8)
			case color.RGBA64:
				// Only produced for opaque 16-bit PNGs, so not premultiplied.
				r, gg, bb, a = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8), uint8(c.A>>8)
			default:
				n := color.NRGBAModel.Convert(c).(color.NRGBA)
				r, gg, bb, a = n.R, n.G, n.B, n.A
			}
			switch mode {
			case ModeL:
				im.Pix[i] = r
			case ModeLA:
				im.Pix[i], im.Pix[i+1] = r, a
			case ModeRGB:
				im.Pix[i], im.Pix[i+1], im.Pix[i+2] = r, gg, bb
			case ModeRGBA:
				im.Pix[i], im.Pix[i+1], im.Pix[i+2], im.Pix[i+3] = r, gg, bb, a
			}
			i += ch
		}
	}
	return im
}

// fromNRGBA copies an NRGBA image into mode RGB or RGBA.
func fromNRGBA(n *image.NRGBA, mode Mode) *Image {
	b := n.Bounds()
	w, h := b.Dx(), b.Dy()
	ch := mode.Channels()
	im := &Image{Mode: mode, Width: w, Height: h, Pix: make([]uint8, w*h*ch)}
	for y := 0; y < h; y++ {
		row := n.Pix[y*n.Stride : y*n.Stride+4*w]
		out := im.Pix[y*w*ch : (y+1)*w*ch]
		if ch == 4 {
			copy(out, row)
			continue
		}
		for x := 0; x < w; x++ {
			copy(out[3*x:3*x+3], row[4*x:4*x+3])
		}
	}
	return im
}

// fromPaletted copies the indices of a paletted image (mode P; the caller
// sets the palette).
func fromPaletted(p *image.Paletted) *Image {
	b := p.Bounds()
	w, h := b.Dx(), b.Dy()
	im := &Image{Mode: ModeP, Width: w, Height: h, Pix: make([]uint8, w*h)}
	for y := 0; y < h; y++ {
		copy(im.Pix[y*w:(y+1)*w], p.Pix[y*p.Stride:y*p.Stride+w])
	}
	pal := greyRamp()
	for i, c := range p.Palette {
		if i >= 256 {
			break
		}
		r, g, bb, _ := c.RGBA()
		pal[i] = [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8)}
	}
	im.Palette = pal
	return im
}
