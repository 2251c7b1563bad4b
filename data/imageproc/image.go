// Package imageproc decodes images and applies CLIP's preprocessing so that
// the result equals, byte for byte, what openai/CLIP's torchvision pipeline
// produces on PIL images (Pillow 9.4, torchvision 0.14, as in Debian 12):
//
//	Resize(n_px, BICUBIC) -> CenterCrop(n_px) -> convert("RGB") -> ToTensor -> Normalize
//
// Images are kept in the PIL mode their decoder would produce, because the
// mode decides how PIL resizes them (bicubic per channel, premultiplied alpha
// for LA/RGBA, nearest neighbour for P and 1, 32-bit arithmetic for I).
package imageproc

import (
	"errors"
	"fmt"
)

// Mode names a PIL image mode.
type Mode string

// The PIL modes this package produces.
const (
	Mode1    Mode = "1"    // bilevel; Pix holds 0 or 255, one byte per pixel
	ModeL    Mode = "L"    // 8-bit grey
	ModeLA   Mode = "LA"   // grey + alpha, 2 bytes per pixel
	ModeRGB  Mode = "RGB"  // 3 bytes per pixel
	ModeRGBA Mode = "RGBA" // 4 bytes per pixel, straight (not premultiplied) alpha
	ModeCMYK Mode = "CMYK" // 4 bytes per pixel, as PIL stores it (ink amounts)
	ModeP    Mode = "P"    // palette indices, 1 byte per pixel, colours in Palette
	ModeI    Mode = "I"    // 32-bit signed integers in PixI (16-bit PNGs)
)

// Channels is the number of bytes per pixel in Pix (0 for ModeI).
func (m Mode) Channels() int {
	switch m {
	case Mode1, ModeL, ModeP:
		return 1
	case ModeLA:
		return 2
	case ModeRGB:
		return 3
	case ModeRGBA, ModeCMYK:
		return 4
	}
	return 0
}

// Image is a decoded image in a PIL mode. Pixels are row-major without
// padding: Pix has Width*Height*Mode.Channels() bytes, or, for ModeI, PixI
// has Width*Height values.
type Image struct {
	Mode          Mode
	Width, Height int
	Pix           []uint8
	PixI          []int32
	// Palette maps ModeP indices to RGB. It always has 256 entries; entries
	// the file did not define hold PIL's default grey ramp (i, i, i).
	Palette *[256][3]uint8
}

// Errors that classify why an input was rejected. Returned errors wrap one
// of these (test with errors.Is) and name the file.
var (
	ErrTruncated     = errors.New("image file is truncated")
	ErrNotImage      = errors.New("not a recognized image format")
	ErrTooManyPixels = errors.New("image has too many pixels (possible decompression bomb)")
	ErrCorrupt       = errors.New("corrupt image data")
	ErrEmpty         = errors.New("empty file")
)

// greyRamp returns PIL's initial palette: entry i is (i, i, i).
func greyRamp() *[256][3]uint8 {
	var p [256][3]uint8
	for i := range p {
		p[i] = [3]uint8{uint8(i), uint8(i), uint8(i)}
	}
	return &p
}

func (im *Image) validate() error {
	if im.Width <= 0 || im.Height <= 0 {
		return fmt.Errorf("image has invalid size %dx%d", im.Width, im.Height)
	}
	n := im.Width * im.Height
	if im.Mode == ModeI {
		if len(im.PixI) != n {
			return fmt.Errorf("mode I image needs %d values, has %d", n, len(im.PixI))
		}
		return nil
	}
	c := im.Mode.Channels()
	if c == 0 {
		return fmt.Errorf("unsupported mode %q", im.Mode)
	}
	if len(im.Pix) != n*c {
		return fmt.Errorf("mode %s image %dx%d needs %d bytes, has %d", im.Mode, im.Width, im.Height, n*c, len(im.Pix))
	}
	if im.Mode == ModeP && im.Palette == nil {
		return errors.New("mode P image without a palette")
	}
	return nil
}
