package imageproc

import "math"

// This file reproduces Pillow 9.4's Image.resize for the cases CLIP's
// preprocessing reaches (src/libImaging/Resample.c and Geometry.c):
// separable bicubic (a = -0.5) with the support widened by the downscale
// factor, 8-bit images through 22-bit fixed-point coefficients and a
// clipping lookup, 32-bit integer images through double coefficients, and
// nearest neighbour (ImagingScaleAffine) for P and 1 images.
//
// Every output pixel depends only on its own coefficient row, so computing
// only the pixels inside the later centre crop gives the same bytes as PIL's
// full resize followed by the crop, at a fraction of the cost.
//
// Floating-point expressions wrap intermediate products in float64() so the
// Go compiler cannot fuse them into FMA instructions, which would round
// differently from the C code (Debian builds Pillow for baseline x86-64,
// without FMA).

// precisionBits is Pillow's PRECISION_BITS: 32 - 8 - 2.
const precisionBits = 22

const bicubicSupport = 2.0

func bicubicFilter(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return float64(float64(float64(float64((a+2.0)*x)-(a+3.0))*x)*x) + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(float64(x-5)*x)+8)*x)-4) * a
	}
	return 0
}

// coeffs is one axis of a resample: for output index i (relative to the
// first computed one), input indices start at min[i] and use n[i] weights
// from k[i*ksize:].
type coeffs struct {
	ksize int
	min   []int
	n     []int
	k     []float64 // normalized weights (Pillow's "prekk")
	ki    []int32   // the same as 22-bit fixed point, for 8-bit images
}

// precomputeCoeffs follows Pillow's precompute_coeffs for the box
// (0, inSize) scaled to outSize, computing only outputs [from, to).
func precomputeCoeffs(inSize, outSize, from, to int) coeffs {
	// box[] is float in Pillow; whole-image boxes are exact in float32.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := bicubicSupport * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	n := to - from
	c := coeffs{ksize: ksize, min: make([]int, n), n: make([]int, n),
		k: make([]float64, n*ksize), ki: make([]int32, n*ksize)}
	ss := 1.0 / filterscale
	for i := 0; i < n; i++ {
		xx := from + i
		center := 0 + float64((float64(xx)+0.5)*scale)
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		k := c.k[i*ksize : (i+1)*ksize]
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bicubicFilter(float64((float64(x+xmin) - center + 0.5) * ss))
			k[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			if ww != 0 {
				k[x] /= ww
			}
		}
		c.min[i] = xmin
		c.n[i] = xmax
	}
	for i, v := range c.k {
		f := float64(v * (1 << precisionBits))
		if v < 0 {
			c.ki[i] = int32(-0.5 + f)
		} else {
			c.ki[i] = int32(0.5 + f)
		}
	}
	return c
}

// clip8 is Pillow's clip8: the accumulator shifted down (arithmetic shift,
// i.e. floor) and clamped to 0..255.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// sourceRows are the rows [r0, r1) of the source the vertical pass reads
// for output rows y0..y0+h (coefficients cv), so the horizontal pass
// resizes only those; without a vertical pass, the rows themselves.
func sourceRows(cv coeffs, needV bool, y0, h int) (r0, r1 int) {
	if !needV {
		return y0, y0 + h
	}
	r0, r1 = cv.min[0], 0
	for i := range cv.min {
		r0 = min(r0, cv.min[i])
		r1 = max(r1, cv.min[i]+cv.n[i])
	}
	return r0, r1
}

// resampleRegion8 resizes an 8-bit image with ch interleaved channels from
// inW x inH to outW x outH and returns only the region at (x0, y0) of size
// w x h, as Pillow's two-pass ImagingResampleInner would compute it.
func resampleRegion8(pix []uint8, ch, inW, inH, outW, outH, x0, y0, w, h int) []uint8 {
	needH := outW != inW
	needV := outH != inH
	src, srcW, rowOff := pix, inW, 0
	var cv coeffs
	if needV {
		cv = precomputeCoeffs(inH, outH, y0, y0+h)
	}
	if needH {
		ch0 := precomputeCoeffs(inW, outW, x0, x0+w)
		r0, r1 := sourceRows(cv, needV, y0, h)
		tmp := make([]uint8, (r1-r0)*w*ch)
		for y := r0; y < r1; y++ {
			horizontalRow(tmp[(y-r0)*w*ch:(y-r0+1)*w*ch], pix[y*inW*ch:(y+1)*inW*ch], ch, &ch0)
		}
		src, srcW, rowOff = tmp, w, r0
		x0 = 0
	}
	out := make([]uint8, w*h*ch)
	if !needV {
		for y := 0; y < h; y++ {
			row := src[((y0+y-rowOff)*srcW+x0)*ch:]
			copy(out[y*w*ch:(y+1)*w*ch], row[:w*ch])
		}
		return out
	}
	// Integer sums do not depend on order, so the vertical pass runs tap by
	// tap over whole rows, which the compiler turns into tight loops.
	acc := make([]int32, w*ch)
	for yy := 0; yy < h; yy++ {
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		k := cv.ki[yy*cv.ksize : yy*cv.ksize+cv.n[yy]]
		ymin := cv.min[yy] - rowOff
		for t, kv := range k {
			off := ((ymin+t)*srcW + x0) * ch
			row := src[off : off+len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * kv
			}
		}
		o := out[yy*w*ch : (yy+1)*w*ch]
		for i, v := range acc {
			o[i] = clip8(v)
		}
	}
	return out
}

// horizontalRow computes one row of the horizontal pass: out[xx] (ch
// channels each) from in with the coefficient rows of c.
func horizontalRow(out, in []uint8, ch int, c *coeffs) {
	const half = int32(1 << (precisionBits - 1))
	w := len(out) / ch
	for xx := 0; xx < w; xx++ {
		k := c.ki[xx*c.ksize : xx*c.ksize+c.n[xx]]
		s := in[c.min[xx]*ch : (c.min[xx]+len(k))*ch]
		switch ch {
		case 1:
			ss := half
			for x, kv := range k {
				ss += int32(s[x]) * kv
			}
			out[xx] = clip8(ss)
		case 3:
			s0, s1, s2 := half, half, half
			for x, kv := range k {
				p := s[3*x : 3*x+3]
				s0 += int32(p[0]) * kv
				s1 += int32(p[1]) * kv
				s2 += int32(p[2]) * kv
			}
			o := out[3*xx : 3*xx+3]
			o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
		default:
			for cc := 0; cc < ch; cc++ {
				ss := half
				for x, kv := range k {
					ss += int32(s[x*ch+cc]) * kv
				}
				out[xx*ch+cc] = clip8(ss)
			}
		}
	}
}

// roundUp is Pillow's ROUND_UP for the 32-bit integer path.
func roundUp(f float64) int32 {
	if f >= 0 {
		return int32(f + 0.5)
	}
	return int32(f - 0.5)
}

// resampleRegion32 is resampleRegion8 for mode I: double weights, rounding
// to int32 after each pass.
func resampleRegion32(pix []int32, inW, inH, outW, outH, x0, y0, w, h int) []int32 {
	needH := outW != inW
	needV := outH != inH
	src, srcW, rowOff := pix, inW, 0
	var cv coeffs
	if needV {
		cv = precomputeCoeffs(inH, outH, y0, y0+h)
	}
	if needH {
		chz := precomputeCoeffs(inW, outW, x0, x0+w)
		r0, r1 := sourceRows(cv, needV, y0, h)
		tmp := make([]int32, (r1-r0)*w)
		for y := r0; y < r1; y++ {
			in := pix[y*inW : (y+1)*inW]
			for xx := 0; xx < w; xx++ {
				k := chz.k[xx*chz.ksize : xx*chz.ksize+chz.n[xx]]
				ss := 0.0
				for x, kv := range k {
					ss += float64(float64(in[chz.min[xx]+x]) * kv)
				}
				tmp[(y-r0)*w+xx] = roundUp(ss)
			}
		}
		src, srcW, rowOff = tmp, w, r0
		x0 = 0
	}
	out := make([]int32, w*h)
	for yy := 0; yy < h; yy++ {
		if !needV {
			copy(out[yy*w:(yy+1)*w], src[(y0+yy-rowOff)*srcW+x0:])
			continue
		}
		k := cv.k[yy*cv.ksize : yy*cv.ksize+cv.n[yy]]
		ymin := cv.min[yy] - rowOff
		for xx := 0; xx < w; xx++ {
			ss := 0.0
			for y, kv := range k {
				ss += float64(float64(src[(ymin+y)*srcW+x0+xx]) * kv)
			}
			out[yy*w+xx] = roundUp(ss)
		}
	}
	return out
}

// nearestIndex tabulates ImagingScaleAffine's source coordinates for an
// axis: the position starts at half a step and is advanced by repeated
// addition (the rounding of that accumulation is part of the result).
func nearestIndex(inSize, outSize int) []int {
	step := float64(float32(inSize)) / float64(outSize)
	idx := make([]int, outSize)
	pos := 0 + float64(step*0.5)
	for i := range idx {
		v := -1
		if pos >= 0 {
			v = int(pos)
		}
		if v >= inSize {
			v = -1 // outside the source: PIL leaves the fill value (0)
		}
		idx[i] = v
		pos += step
	}
	return idx
}

// nearestRegion8 is Pillow's NEAREST resize of a 1-byte-per-pixel image,
// returning only the w x h region at (x0, y0).
func nearestRegion8(pix []uint8, inW, inH, outW, outH, x0, y0, w, h int) []uint8 {
	xi := nearestIndex(inW, outW)[x0 : x0+w]
	yi := nearestIndex(inH, outH)[y0 : y0+h]
	out := make([]uint8, w*h)
	for y, sy := range yi {
		if sy < 0 {
			continue
		}
		row := pix[sy*inW : (sy+1)*inW]
		for x, sx := range xi {
			if sx >= 0 {
				out[y*w+x] = row[sx]
			}
		}
	}
	return out
}
