package imageproc

import (
	"fmt"
	"math"
)

// CLIP's normalization constants (openai/CLIP clip.py _transform). Read-only:
// the normalization table is computed from them at start-up.
var (
	Mean = [3]float32{0.48145466, 0.4578275, 0.40821073}
	Std  = [3]float32{0.26862954, 0.26130258, 0.27577711}
)

// Preprocessor applies CLIP's image transform for input resolution NPx
// (224 for ViT-B/32, 288 for RN50x4, ...).
type Preprocessor struct {
	NPx     int
	Decoder Decoder
}

// NewPreprocessor returns a Preprocessor for nPx with the default Decoder.
func NewPreprocessor(nPx int) *Preprocessor { return &Preprocessor{NPx: nPx} }

// ResizedSize is torchvision 0.14's _compute_resized_output_size for an int
// size: the shorter side becomes nPx and the longer int(nPx*long/short).
// (Python's int/int true division is correctly rounded, as float64 division
// of these exactly representable values is.)
func ResizedSize(w, h, nPx int) (int, int) {
	short, long := h, w
	if w <= h {
		short, long = w, h
	}
	newLong := int(float64(nPx*long) / float64(short))
	if w <= h {
		return nPx, newLong
	}
	return newLong, nPx
}

// cropOffset is torchvision's int(round((size - n) / 2.0)); Python's round
// rounds halves to even.
func cropOffset(size, n int) int {
	return int(math.RoundToEven(float64(size-n) / 2.0))
}

// Crop returns Resize(NPx, bicubic) + CenterCrop(NPx) + convert("RGB") of
// im as NPx*NPx*3 bytes, row-major RGB, equal to PIL's bytes for the same
// image. The resize is done in the image's own mode, as PIL does.
func (p *Preprocessor) Crop(im *Image) ([]uint8, error) {
	n := p.NPx
	if n <= 0 {
		return nil, fmt.Errorf("imageproc: invalid crop size %d", n)
	}
	if err := im.validate(); err != nil {
		return nil, fmt.Errorf("imageproc: %w", err)
	}
	ow, oh := ResizedSize(im.Width, im.Height, n)
	if ow < n || oh < n {
		// Unreachable for valid sizes: the short side is n and the long one
		// no smaller. torchvision would pad here; we refuse instead.
		return nil, fmt.Errorf("imageproc: resized size %dx%d smaller than crop %d", ow, oh, n)
	}
	x0, y0 := cropOffset(ow, n), cropOffset(oh, n)
	sameSize := ow == im.Width && oh == im.Height
	var region []uint8
	var regionI []int32
	switch im.Mode {
	case ModeP, Mode1:
		// PIL forces NEAREST for these modes whatever filter is asked for.
		if sameSize {
			region = cropBytes(im.Pix, 1, im.Width, x0, y0, n, n)
		} else {
			region = nearestRegion8(im.Pix, im.Width, im.Height, ow, oh, x0, y0, n, n)
		}
	case ModeI:
		if sameSize {
			regionI = make([]int32, n*n)
			for y := 0; y < n; y++ {
				copy(regionI[y*n:(y+1)*n], im.PixI[(y0+y)*im.Width+x0:])
			}
		} else {
			regionI = resampleRegion32(im.PixI, im.Width, im.Height, ow, oh, x0, y0, n, n)
		}
	default:
		ch := im.Mode.Channels()
		if sameSize {
			region = cropBytes(im.Pix, ch, im.Width, x0, y0, n, n)
			break
		}
		src := im.Pix
		alpha := im.Mode == ModeLA || im.Mode == ModeRGBA
		if alpha {
			src = append([]uint8(nil), im.Pix...)
			premultiply(src, ch)
		}
		region = resampleRegion8(src, ch, im.Width, im.Height, ow, oh, x0, y0, n, n)
		if alpha {
			unpremultiply(region, ch)
		}
	}
	return toRGB(im.Mode, region, regionI, im.Palette, n*n), nil
}

func cropBytes(pix []uint8, ch, w, x0, y0, cw, chh int) []uint8 {
	out := make([]uint8, cw*chh*ch)
	for y := 0; y < chh; y++ {
		copy(out[y*cw*ch:(y+1)*cw*ch], pix[((y0+y)*w+x0)*ch:])
	}
	return out
}

// normLUT holds the normalized value of every byte per channel: there are
// only 256 inputs, and a table keeps the float32 arithmetic in one place.
var normLUT = func() (lut [3][256]float32) {
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			lut[c][v] = (float32(v)/255 - Mean[c]) / Std[c]
		}
	}
	return lut
}()

// Normalize turns an HWC RGB crop into CLIP's CHW float32 input:
// (v/255 - mean) / std per channel, in float32 as torch computes it.
func Normalize(crop []uint8) []float32 {
	n := len(crop) / 3
	out := make([]float32, 3*n)
	NormalizeInto(out, crop)
	return out
}

// NormalizeInto is Normalize writing into out (len 3*len(crop)/3).
func NormalizeInto(out []float32, crop []uint8) {
	n := len(crop) / 3
	lut := &normLUT
	for i := 0; i < n; i++ {
		out[i] = lut[0][crop[3*i]]
		out[n+i] = lut[1][crop[3*i+1]]
		out[2*n+i] = lut[2][crop[3*i+2]]
	}
}

// Preprocess returns the normalized CHW tensor (3*NPx*NPx float32) for im.
func (p *Preprocessor) Preprocess(im *Image) ([]float32, error) {
	crop, err := p.Crop(im)
	if err != nil {
		return nil, err
	}
	return Normalize(crop), nil
}

// File decodes and preprocesses the file at path.
func (p *Preprocessor) File(path string) ([]float32, error) {
	im, err := p.Decoder.DecodeFile(path)
	if err != nil {
		return nil, err
	}
	out, err := p.Preprocess(im)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// PreprocessFile decodes the file at path and applies CLIP's transform for
// nPx, returning 3*nPx*nPx float32 values in CHW order.
func PreprocessFile(path string, nPx int) ([]float32, error) {
	return NewPreprocessor(nPx).File(path)
}
