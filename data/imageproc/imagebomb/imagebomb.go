// Package imagebomb makes decompression bombs for tests: tiny files whose
// headers declare huge images, which a decoder must refuse from the header
// before allocating anything from the declared size.
package imagebomb

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
)

// PNG colour types and bit depths the tests use.
const (
	Gray = 0
	RGB  = 2
	RGBA = 6
)

// PNG is a valid PNG header declaring w x h at the given bit depth and
// colour type, followed by a few bytes of IDAT.
func PNG(w, h int, depth, colorType byte) []byte {
	chunk := func(typ string, data []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		b = append(append(b, typ...), data...)
		return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, depth, colorType, 0, 0, 0)
	out := append([]byte("\x89PNG\r\n\x1a\n"), chunk("IHDR", ihdr)...)
	return append(out, chunk("IDAT", []byte{0x78, 0x9c, 0x01, 0x00})...)
}

// JPEG is a small grey JPEG whose frame header is rewritten to declare
// w x h, cut off just after its scan starts.
func JPEG(w, h int) ([]byte, error) {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		return nil, err
	}
	data := b.Bytes()
	sof, sos := bytes.Index(data, []byte{0xFF, 0xC0}), bytes.Index(data, []byte{0xFF, 0xDA})
	if sof < 0 || sos < 0 {
		return nil, fmt.Errorf("imagebomb: the encoder wrote no SOF0/SOS marker")
	}
	binary.BigEndian.PutUint16(data[sof+5:], uint16(h))
	binary.BigEndian.PutUint16(data[sof+7:], uint16(w))
	return data[:sos+20], nil
}
