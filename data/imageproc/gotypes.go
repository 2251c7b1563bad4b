package imageproc

import "image"

// goPixels describes the pixel layout of the image types Go's decoders
// return, so they convert in one pass over their bytes: the generic At path
// boxes a color.Color per pixel (seconds and gigabytes of garbage on a large
// 16-bit PNG).
type goPixels struct {
	pix    []uint8
	stride int
	rect   image.Rectangle
	bpp    int  // bytes per pixel
	ss     int  // bytes per sample: 1, or 2 for 16-bit big-endian
	grey   bool // one sample per pixel
}

func layoutOf(g image.Image) (goPixels, bool) {
	switch v := g.(type) {
	case *image.NRGBA:
		return goPixels{v.Pix, v.Stride, v.Rect, 4, 1, false}, true
	case *image.RGBA:
		// Go's PNG and BMP decoders return RGBA only for opaque images, so
		// the premultiplied values equal the straight ones.
		return goPixels{v.Pix, v.Stride, v.Rect, 4, 1, false}, true
	case *image.NRGBA64:
		return goPixels{v.Pix, v.Stride, v.Rect, 8, 2, false}, true
	case *image.RGBA64:
		return goPixels{v.Pix, v.Stride, v.Rect, 8, 2, false}, true // opaque, as above
	case *image.Gray:
		return goPixels{v.Pix, v.Stride, v.Rect, 1, 1, true}, true
	case *image.Gray16:
		return goPixels{v.Pix, v.Stride, v.Rect, 2, 2, true}, true
	}
	return goPixels{}, false
}

// fastFromGo is fromGo for the types layoutOf knows (mode L, LA, RGB or
// RGBA; 16-bit samples keep their high byte, alpha is not applied). It
// reports false for other types.
func fastFromGo(g image.Image, mode Mode) (*Image, bool) {
	l, ok := layoutOf(g)
	if !ok {
		return nil, false
	}
	w, h := l.rect.Dx(), l.rect.Dy()
	ch := mode.Channels()
	im := &Image{Mode: mode, Width: w, Height: h, Pix: make([]uint8, w*h*ch)}
	for y := 0; y < h; y++ {
		row := l.pix[y*l.stride : y*l.stride+w*l.bpp]
		out := im.Pix[y*w*ch : (y+1)*w*ch]
		for x := 0; x < w; x++ {
			p := row[x*l.bpp:]
			var r, gg, b, a uint8
			if l.grey {
				r, gg, b, a = p[0], p[0], p[0], 255
			} else {
				r, gg, b, a = p[0], p[l.ss], p[2*l.ss], p[3*l.ss]
			}
			o := out[x*ch:]
			switch mode {
			case ModeL:
				o[0] = r
			case ModeLA:
				o[0], o[1] = r, a
			case ModeRGB:
				o[0], o[1], o[2] = r, gg, b
			case ModeRGBA:
				o[0], o[1], o[2], o[3] = r, gg, b, a
			}
		}
	}
	return im, true
}

// greyI converts a 16-bit grey PNG (Gray16, or NRGBA64 with the grey
// replicated when the file has tRNS) to mode I.
func greyI(g image.Image) (*Image, bool) {
	l, ok := layoutOf(g)
	if !ok || l.ss != 2 {
		return nil, false
	}
	w, h := l.rect.Dx(), l.rect.Dy()
	im := &Image{Mode: ModeI, Width: w, Height: h, PixI: make([]int32, w*h)}
	for y := 0; y < h; y++ {
		row := l.pix[y*l.stride:]
		for x := 0; x < w; x++ {
			p := row[x*l.bpp:]
			im.PixI[y*w+x] = int32(p[0])<<8 | int32(p[1])
		}
	}
	return im, true
}
