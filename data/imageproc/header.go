package imageproc

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// UntrustedMaxPixels is the pixel cap for images from clients or arbitrary
// hosts (serve, Conceptual Captions downloads): 40 Mpx is more than any
// camera photo, while a 16-bit RGBA file at the cap still decodes within
// about 0.6 GB. DefaultMaxPixels stays PIL's limit so that local files
// decode as PIL would.
const UntrustedMaxPixels = 40_000_000

// Config is what an image file's header declares, read without decoding
// (or allocating) any pixels.
type Config struct {
	Format        string // "jpeg", "png", "gif", "bmp" or "webp"
	Width, Height int    // the canvas Decode returns
	// DecodeBytes estimates the peak memory Decode plus Preprocess take:
	// the Go decoder's buffer, this package's copy in the PIL mode and, for
	// images with alpha, the premultiplied copy the resize works on.
	DecodeBytes int64
}

// ReadConfig reads an image's header. Errors wrap ErrEmpty, ErrNotImage,
// ErrTruncated or ErrCorrupt; it does not apply any pixel limit.
func ReadConfig(data []byte) (Config, error) {
	if len(data) == 0 {
		return Config{}, ErrEmpty
	}
	px := func(w, h int, perPixel int64) Config {
		return Config{Width: w, Height: h, DecodeBytes: int64(w) * int64(h) * perPixel}
	}
	switch sniff(data) {
	case fmtJPEG:
		h, err := jpegReadHeader(data)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				return Config{}, err
			}
			return Config{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		c := px(h.width, h.height, int64(h.components))
		c.Format = "jpeg"
		return c, nil
	case fmtPNG:
		h, err := readPNGHeader(data)
		if err != nil {
			return Config{}, err
		}
		mode, ok := pngMode(h.depth, h.colType)
		if !ok {
			return Config{}, fmt.Errorf("%w: unsupported PNG bit depth %d with colour type %d", ErrCorrupt, h.depth, h.colType)
		}
		c := px(h.width, h.height, pngGoBytes(h.depth, h.colType)+ownBytes(mode))
		c.Format = "png"
		return c, nil
	case fmtGIF:
		h, err := readGIFHeader(data)
		if err != nil {
			return Config{}, err
		}
		// PIL grows the canvas to hold a frame that extends past the screen.
		w, ht := max(h.screenW, h.frame.Max.X), max(h.screenH, h.frame.Max.Y)
		c := px(w, ht, 2)
		c.Format = "gif"
		return c, nil
	case fmtBMP:
		g, err := bmp.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return Config{}, goDecodeErr(err)
		}
		c := px(g.Width, g.Height, 4+2*4)
		c.Format = "bmp"
		return c, nil
	case fmtWebP:
		g, err := webp.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return Config{}, goDecodeErr(err)
		}
		c := px(g.Width, g.Height, 4+2*4)
		c.Format = "webp"
		return c, nil
	}
	return Config{}, ErrNotImage
}

// Check reads data's header and applies d.MaxPixels, so an oversized image
// is refused with ErrTooManyPixels before any pixel buffer exists. Errors
// name the input, as Decode's do.
func (d Decoder) Check(data []byte, name string) (Config, error) {
	c, err := d.check(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func (d Decoder) check(data []byte) (Config, error) {
	c, err := ReadConfig(data)
	if err != nil {
		return c, err
	}
	return c, d.checkSize(c.Width, c.Height)
}

// pngGoBytes is the bytes per pixel of image/png's result for a PNG type:
// 16-bit colour decodes to 8 bytes a pixel, 8-bit colour to 4.
func pngGoBytes(depth, colType int) int64 {
	switch {
	case colType == 0 || colType == 3:
		if depth == 16 {
			return 2
		}
		return 1
	case depth == 16:
		return 8
	}
	return 4
}

// ownBytes is this package's per-pixel cost for an image of mode m: its
// copy, and for alpha modes the premultiplied copy Crop resizes.
func ownBytes(m Mode) int64 {
	switch m {
	case ModeI:
		return 4
	case ModeLA, ModeRGBA:
		return 2 * int64(m.Channels())
	}
	return int64(m.Channels())
}
