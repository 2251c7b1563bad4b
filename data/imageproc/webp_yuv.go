package imageproc

import "image"

// Lossy WebP stores 4:2:0 limited-range YUV. x/image/webp hands back the
// planes; Go's own YCbCr conversion assumes full-range JPEG YCbCr and would
// be tens of levels off. libwebp (which PIL uses) upsamples chroma with its
// "fancy" 9-3-3-1 filter and converts with 14-bit fixed-point BT.601
// limited-range coefficients (src/dsp/yuv.h, src/dsp/upsampling.c); this
// file follows those semantics.

const yuvFix2 = 6
const yuvMask2 = (256 << yuvFix2) - 1

func multHi(v, coeff int) int { return (v * coeff) >> 8 }

func yuvClip8(v int) uint8 {
	if v&^yuvMask2 == 0 {
		return uint8(v >> yuvFix2)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func yuvToRGB(y, u, v int, dst []uint8) {
	dst[0] = yuvClip8(multHi(y, 19077) + multHi(v, 26149) - 14234)
	dst[1] = yuvClip8(multHi(y, 19077) - multHi(u, 6419) - multHi(v, 13320) + 8708)
	dst[2] = yuvClip8(multHi(y, 19077) + multHi(u, 33050) - 17685)
}

// upsampleLinePair converts one or two luma rows sharing the chroma rows
// topU/V (the row above) and curU/V (the row below) to RGB, libwebp's
// UpsampleRgbLinePair. botY/botDst are nil for a single row.
func upsampleLinePair(topY, botY, topU, topV, curU, curV []uint8, topDst, botDst []uint8, n int) {
	load := func(u, v uint8) uint32 { return uint32(u) | uint32(v)<<16 }
	emit := func(y uint8, uv uint32, dst []uint8) {
		yuvToRGB(int(y), int(uv&0xff), int(uv>>16), dst)
	}
	last := (n - 1) >> 1
	tl := load(topU[0], topV[0])
	l := load(curU[0], curV[0])
	emit(topY[0], (3*tl+l+0x00020002)>>2, topDst)
	if botY != nil {
		emit(botY[0], (3*l+tl+0x00020002)>>2, botDst)
	}
	for x := 1; x <= last; x++ {
		t := load(topU[x], topV[x])
		uv := load(curU[x], curV[x])
		avg := tl + t + l + uv + 0x00080008
		d12 := (avg + 2*(t+l)) >> 3
		d03 := (avg + 2*(tl+uv)) >> 3
		emit(topY[2*x-1], (d12+tl)>>1, topDst[3*(2*x-1):])
		emit(topY[2*x], (d03+t)>>1, topDst[3*2*x:])
		if botY != nil {
			emit(botY[2*x-1], (d03+l)>>1, botDst[3*(2*x-1):])
			emit(botY[2*x], (d12+uv)>>1, botDst[3*2*x:])
		}
		tl, l = t, uv
	}
	if n&1 == 0 {
		emit(topY[n-1], (3*tl+l+0x00020002)>>2, topDst[3*(n-1):])
		if botY != nil {
			emit(botY[n-1], (3*l+tl+0x00020002)>>2, botDst[3*(n-1):])
		}
	}
}

// webpYCbCrToRGB converts a 4:2:0 frame as libwebp's EmitFancyRGB does:
// row 0 alone, then pairs (2k-1, 2k) between chroma rows k-1 and k, and a
// lone last row when the height is even.
func webpYCbCrToRGB(m *image.YCbCr) []uint8 {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	out := make([]uint8, 3*w*h)
	yRow := func(y int) []uint8 { return m.Y[y*m.YStride : y*m.YStride+w] }
	cw := (w + 1) / 2
	uRow := func(y int) []uint8 { return m.Cb[y*m.CStride : y*m.CStride+cw] }
	vRow := func(y int) []uint8 { return m.Cr[y*m.CStride : y*m.CStride+cw] }
	dst := func(y int) []uint8 { return out[3*w*y : 3*w*(y+1)] }
	upsampleLinePair(yRow(0), nil, uRow(0), vRow(0), uRow(0), vRow(0), dst(0), nil, w)
	for k := 1; 2*k-1 < h; k++ {
		top, bot := 2*k-1, 2*k
		cu := min(k, (h+1)/2-1)
		if bot < h {
			upsampleLinePair(yRow(top), yRow(bot), uRow(k-1), vRow(k-1), uRow(cu), vRow(cu), dst(top), dst(bot), w)
		} else {
			// Even height: the last row uses the last chroma row twice.
			upsampleLinePair(yRow(top), nil, uRow(k-1), vRow(k-1), uRow(k-1), vRow(k-1), dst(top), nil, w)
		}
	}
	return out
}
