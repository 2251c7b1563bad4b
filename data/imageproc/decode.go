package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"os"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the pixel count above which PIL raises
// DecompressionBombError: twice Image.MAX_IMAGE_PIXELS (1024*1024*1024/4/3).
const DefaultMaxPixels = 2 * (1024 * 1024 * 1024 / 4 / 3)

// Decoder decodes image files into PIL-mode Images.
type Decoder struct {
	// MaxPixels rejects images with more pixels (width*height) before their
	// pixel data is decoded. 0 means DefaultMaxPixels; negative disables.
	MaxPixels int
}

// Decode decodes an in-memory image with the default Decoder; name is used
// only in error messages.
func Decode(data []byte, name string) (*Image, error) { return Decoder{}.Decode(data, name) }

// DecodeFile reads and decodes a file with the default Decoder.
func DecodeFile(path string) (*Image, error) { return Decoder{}.DecodeFile(path) }

// DecodeFile reads and decodes the file at path.
func (d Decoder) DecodeFile(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // already names the path
	}
	return d.Decode(data, path)
}

// Decode decodes data (JPEG, PNG, GIF first frame, BMP or WebP, chosen by
// content, not by name). EXIF orientation is not applied, as PIL's
// Image.open does not. Errors name the input and wrap one of ErrEmpty,
// ErrNotImage, ErrTruncated, ErrTooManyPixels or ErrCorrupt.
func (d Decoder) Decode(data []byte, name string) (*Image, error) {
	im, err := d.decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := im.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrCorrupt, err)
	}
	return im, nil
}

type format int

const (
	fmtUnknown format = iota
	fmtJPEG
	fmtPNG
	fmtGIF
	fmtBMP
	fmtWebP
)

func sniff(b []byte) format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return fmtJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return fmtPNG
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return fmtGIF
	case bytes.HasPrefix(b, []byte("BM")):
		return fmtBMP
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return fmtWebP
	}
	return fmtUnknown
}

func (d Decoder) checkSize(w, h int) error {
	limit := d.MaxPixels
	if limit == 0 {
		limit = DefaultMaxPixels
	}
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: invalid size %dx%d", ErrCorrupt, w, h)
	}
	if limit > 0 && w > limit/h {
		return fmt.Errorf("%w: %dx%d = %d pixels exceeds limit of %d", ErrTooManyPixels, w, h, w*h, limit)
	}
	return nil
}

func (d Decoder) decode(data []byte) (*Image, error) {
	// Every format's header is read and its size checked here, before any
	// decoder allocates pixels.
	if _, err := d.check(data); err != nil {
		return nil, err
	}
	switch sniff(data) {
	case fmtJPEG:
		h, err := jpegReadHeader(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		im, err := decodeJPEG(data, h)
		if err != nil && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return im, err
	case fmtPNG:
		return d.decodePNG(data)
	case fmtGIF:
		return d.decodeGIF(data)
	case fmtBMP:
		return d.decodeBMP(data)
	case fmtWebP:
		return d.decodeWebP(data)
	}
	return nil, ErrNotImage
}

// goDecodeErr classifies an error from a Go image decoder.
func goDecodeErr(err error) error {
	if errors.Is(err, errUnexpectedEOF) {
		return ErrTruncated
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

// decodeWebP: WebP decodes as RGB, or RGBA when the file declares alpha,
// as in PIL. Lossless files come out of x/image/webp exact; lossy frames
// are converted from its YUV planes the way libwebp does (webp_yuv.go).
func (d Decoder) decodeWebP(data []byte) (*Image, error) {
	g, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, goDecodeErr(err)
	}
	mode := ModeRGB
	if webpHasAlpha(data) {
		mode = ModeRGBA
	}
	switch m := g.(type) {
	case *image.NRGBA:
		return fromNRGBA(m, mode), nil
	case *image.YCbCr:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return fromRGB(webpYCbCrToRGB(m), m.Rect.Dx(), m.Rect.Dy(), mode, nil), nil
		}
	case *image.NYCbCrA:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return fromRGB(webpYCbCrToRGB(&m.YCbCr), m.Rect.Dx(), m.Rect.Dy(), mode, m), nil
		}
	}
	return fromGo(g, mode), nil
}

// fromRGB wraps packed RGB as mode RGB, or RGBA taking alpha from a (or
// opaque when a is nil).
func fromRGB(rgb []uint8, w, h int, mode Mode, a *image.NYCbCrA) *Image {
	if mode == ModeRGB {
		return &Image{Mode: ModeRGB, Width: w, Height: h, Pix: rgb}
	}
	im := &Image{Mode: ModeRGBA, Width: w, Height: h, Pix: make([]uint8, 4*w*h)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			copy(im.Pix[4*i:4*i+3], rgb[3*i:3*i+3])
			im.Pix[4*i+3] = 255
			if a != nil {
				im.Pix[4*i+3] = a.A[y*a.AStride+x]
			}
		}
	}
	return im
}

// webpHasAlpha reads the alpha flag libwebp's WebPGetFeatures reports: the
// VP8X flags, or the alpha_is_used bit of a simple lossless header.
func webpHasAlpha(b []byte) bool {
	if len(b) < 25 {
		return false
	}
	switch string(b[12:16]) {
	case "VP8X":
		return b[20]&0x10 != 0
	case "VP8L":
		return (le32(b[21:])>>28)&1 != 0
	}
	return false
}

// decodeBMP maps BMP files to PIL's modes: palette files become 1 or L when
// the palette is the matching grey ramp, else P; 32-bit files are RGBA only
// with a BITFIELDS alpha mask.
func (d Decoder) decodeBMP(data []byte) (*Image, error) {
	g, err := bmp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, goDecodeErr(err)
	}
	if p, ok := g.(*image.Paletted); ok {
		im := fromPaletted(p)
		pal := make([][3]uint8, len(p.Palette))
		for i, c := range p.Palette {
			r, gg, b, _ := c.RGBA()
			pal[i] = [3]uint8{uint8(r >> 8), uint8(gg >> 8), uint8(b >> 8)}
		}
		bmpGreyMode(im, pal)
		return im, nil
	}
	mode := ModeRGB
	if len(data) >= 14+56 && le32(data[14:]) >= 56 && le16(data[14+14:]) == 32 &&
		le32(data[14+16:]) == 3 && le32(data[14+52:]) != 0 {
		mode = ModeRGBA
	}
	if n, ok := g.(*image.NRGBA); ok {
		return fromNRGBA(n, mode), nil
	}
	return fromGo(g, mode), nil
}

// bmpGreyMode applies BmpImagePlugin's greyscale test: 2 colours black and
// white give mode 1; n colours equal to (i, i, i) give mode L.
func bmpGreyMode(im *Image, pal [][3]uint8) {
	grey := true
	for i, c := range pal {
		v := uint8(i)
		if len(pal) == 2 {
			v = uint8(255 * i)
		}
		if c != [3]uint8{v, v, v} {
			grey = false
			break
		}
	}
	if !grey {
		return
	}
	if len(pal) == 2 {
		im.Mode = Mode1
		for i, v := range im.Pix {
			im.Pix[i] = 255 * (v & 1)
		}
	} else {
		im.Mode = ModeL
	}
	im.Palette = nil
}

func le16(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 }
func le32(b []byte) uint32 { return le16(b) | le16(b[2:])<<16 }
