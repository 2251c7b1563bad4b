package imageproc

// Mode conversions with Pillow 9.4's arithmetic (src/libImaging/Convert.c).

// mulDiv255 is Pillow's MULDIV255: (a*b + 127) / 255 computed with shifts.
func mulDiv255(a, b uint32) uint8 {
	t := a*b + 128
	return uint8(((t >> 8) + t) >> 8)
}

// premultiply converts LA to La or RGBA to RGBa in place (lA2la, rgbA2rgba):
// PIL resizes images with alpha in premultiplied form.
func premultiply(pix []uint8, ch int) {
	for i := 0; i < len(pix); i += ch {
		a := uint32(pix[i+ch-1])
		for c := 0; c < ch-1; c++ {
			pix[i+c] = mulDiv255(uint32(pix[i+c]), a)
		}
	}
}

// unpremultiply is la2lA / rgba2rgbA, in place.
func unpremultiply(pix []uint8, ch int) {
	for i := 0; i < len(pix); i += ch {
		a := int(pix[i+ch-1])
		if a == 255 || a == 0 {
			continue
		}
		for c := 0; c < ch-1; c++ {
			v := 255 * int(pix[i+c]) / a
			if v > 255 {
				v = 255
			}
			pix[i+c] = uint8(v)
		}
	}
}

// toRGB converts n pixels of mode m to packed RGB, as Image.convert("RGB").
// Alpha is dropped, not composited, exactly as PIL does.
func toRGB(m Mode, pix []uint8, pixI []int32, pal *[256][3]uint8, n int) []uint8 {
	out := make([]uint8, 3*n)
	switch m {
	case ModeRGB:
		copy(out, pix[:3*n])
	case ModeRGBA:
		for i := 0; i < n; i++ {
			copy(out[3*i:3*i+3], pix[4*i:4*i+3])
		}
	case ModeL, Mode1:
		// Mode 1 stores 0/255 already, so bit2rgb and l2rgb agree.
		for i := 0; i < n; i++ {
			v := pix[i]
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
	case ModeLA:
		for i := 0; i < n; i++ {
			v := pix[2*i]
			out[3*i], out[3*i+1], out[3*i+2] = v, v, v
		}
	case ModeP:
		for i := 0; i < n; i++ {
			c := pal[pix[i]]
			out[3*i], out[3*i+1], out[3*i+2] = c[0], c[1], c[2]
		}
	case ModeCMYK:
		for i := 0; i < n; i++ {
			nk := 255 - int(pix[4*i+3])
			for c := 0; c < 3; c++ {
				t := int(pix[4*i+c])*nk + 128
				v := nk - ((t>>8)+t)>>8
				if v < 0 {
					v = 0
				}
				out[3*i+c] = uint8(v)
			}
		}
	case ModeI:
		for i := 0; i < n; i++ {
			v := pixI[i]
			if v < 0 {
				v = 0
			} else if v > 255 {
				v = 255
			}
			out[3*i], out[3*i+1], out[3*i+2] = uint8(v), uint8(v), uint8(v)
		}
	}
	return out
}
