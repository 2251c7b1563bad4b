package imageproc

// JPEG decoding goes through libjpeg-turbo because PIL does, and pixel
// equality with PIL is the point of this package: Go's image/jpeg uses a
// different IDCT and no fancy upsampling, which moves 4:2:0 chroma edges by
// tens of levels. The settings mirror Pillow 9.4's JpegDecode.c: default DCT
// method (JDCT_ISLOW), fancy upsampling on, output colour space chosen from
// the number of components (L, RGB, CMYK), no scaling.
//
// Debian package: libjpeg62-turbo-dev (provides jpeglib.h and libjpeg.so).

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int eof_warning;    // libjpeg hit the end of the data and padded it
	char msg[JMSG_LENGTH_MAX];
} cc_err;

static void cc_error_exit(j_common_ptr cinfo) {
	cc_err *e = (cc_err *)cinfo->err;
	(*cinfo->err->format_message)(cinfo, e->msg);
	longjmp(e->jump, 1);
}

// Warnings are silenced like PIL does, except running out of data, which
// PIL reports as "image file is truncated".
static void cc_emit_message(j_common_ptr cinfo, int level) {
	cc_err *e = (cc_err *)cinfo->err;
	if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
		e->eof_warning = 1;
	}
}

static void cc_output_message(j_common_ptr cinfo) {}

typedef struct {
	int width, height, components, bits;
	int eof;
	char msg[JMSG_LENGTH_MAX];
} cc_info;

// cc_jpeg reads a JPEG. With out NULL it reads only the header into info
// (dimensions, component count, precision), so the caller can apply the
// pixel limit before allocating; else it decodes into out
// (width*height*components bytes, the geometry info holds).
static int cc_jpeg(const unsigned char *data, unsigned long size, unsigned char *out, cc_info *info) {
	struct jpeg_decompress_struct cinfo;
	cc_err err;
	memset(&err, 0, sizeof err);
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = cc_error_exit;
	err.pub.emit_message = cc_emit_message;
	err.pub.output_message = cc_output_message;
	if (setjmp(err.jump)) {
		memcpy(info->msg, err.msg, sizeof info->msg);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	jpeg_mem_src(&cinfo, data, size);
	jpeg_read_header(&cinfo, TRUE);
	if (out == NULL) {
		info->width = cinfo.image_width;
		info->height = cinfo.image_height;
		info->components = cinfo.num_components;
		info->bits = cinfo.data_precision;
		info->eof = err.eof_warning;
		jpeg_destroy_decompress(&cinfo);
		return 0;
	}
	switch (cinfo.num_components) {
	case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
	case 3: cinfo.out_color_space = JCS_RGB; break;
	case 4: cinfo.out_color_space = JCS_CMYK; break;
	default:
		snprintf(info->msg, sizeof info->msg, "cannot handle %d-layer images", cinfo.num_components);
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != info->width || (int)cinfo.output_height != info->height ||
	    cinfo.output_components != info->components) {
		snprintf(info->msg, sizeof info->msg, "unexpected output geometry");
		jpeg_destroy_decompress(&cinfo);
		return -1;
	}
	size_t stride = (size_t)cinfo.output_width * cinfo.output_components;
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW row = out + (size_t)cinfo.output_scanline * stride;
		jpeg_read_scanlines(&cinfo, &row, 1);
	}
	// Data missing before the last scanline means a truncated file; a
	// missing EOI after complete pixel data is tolerated.
	info->eof = err.eof_warning;
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

type jpegHeader struct {
	width, height, components int
}

func jpegReadHeader(data []byte) (jpegHeader, error) {
	if len(data) == 0 {
		return jpegHeader{}, errors.New("empty JPEG data")
	}
	var info C.cc_info
	rc := C.cc_jpeg((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), nil, &info)
	if rc != 0 {
		return jpegHeader{}, fmt.Errorf("invalid JPEG: %s", C.GoString(&info.msg[0]))
	}
	if info.bits != 8 {
		return jpegHeader{}, fmt.Errorf("cannot handle %d-bit JPEG layers", int(info.bits))
	}
	h := jpegHeader{int(info.width), int(info.height), int(info.components)}
	if h.components != 1 && h.components != 3 && h.components != 4 {
		return jpegHeader{}, fmt.Errorf("cannot handle %d-layer JPEG images", h.components)
	}
	return h, nil
}

// decodeJPEG decodes data whose header was already validated by
// jpegReadHeader into an Image in PIL's mode for it (L, RGB or CMYK).
func decodeJPEG(data []byte, h jpegHeader) (*Image, error) {
	pix := make([]uint8, h.width*h.height*h.components)
	info := C.cc_info{width: C.int(h.width), height: C.int(h.height), components: C.int(h.components)}
	rc := C.cc_jpeg((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)),
		(*C.uchar)(unsafe.Pointer(&pix[0])), &info)
	if rc != 0 {
		return nil, fmt.Errorf("invalid JPEG: %s", C.GoString(&info.msg[0]))
	}
	if info.eof != 0 {
		return nil, ErrTruncated
	}
	img := &Image{Width: h.width, Height: h.height, Pix: pix}
	switch h.components {
	case 1:
		img.Mode = ModeL
	case 3:
		img.Mode = ModeRGB
	case 4:
		// PIL always reads 4-channel JPEGs with rawmode "CMYK;I" (Adobe
		// polarity, inverted), whatever the markers say.
		img.Mode = ModeCMYK
		for i, v := range pix {
			pix[i] = 255 - v
		}
	}
	return img, nil
}
