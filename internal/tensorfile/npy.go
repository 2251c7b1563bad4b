package tensorfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// npyMagic opens every .npy file.
const npyMagic = "\x93NUMPY"

// npy descr strings and our dtypes, both ways. Only little-endian and
// byte-sized types: everything clipcap stores is one of these.
var npyToDtype = map[string]Dtype{
	"<f4": F32, "<f2": F16, "<f8": F64, "<i8": I64, "<i4": I32,
	"|u1": U8, "|i1": I8, "<i2": I16, "|b1": BOOL,
}

var dtypeToNpy = map[Dtype]string{
	F32: "<f4", F16: "<f2", F64: "<f8", I64: "<i8", I32: "<i4",
	U8: "|u1", I8: "|i1", I16: "<i2", BOOL: "|b1",
}

// ReadNpy reads a .npy file (format version 1.0, 2.0 or 3.0) holding a
// C-ordered array of a supported little-endian dtype.
func ReadNpy(path string) (RawTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return RawTensor{}, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return RawTensor{}, fmt.Errorf("npy: %w", err)
	}
	t, err := DecodeNpy(bufio.NewReader(f), st.Size())
	if err != nil {
		return RawTensor{}, fmt.Errorf("npy %s: %w", path, err)
	}
	return t, nil
}

// DecodeNpy reads one .npy array from r. size bounds the data (the file size,
// or -1 when unknown) so a corrupt shape cannot cause a huge allocation.
func DecodeNpy(r io.Reader, size int64) (RawTensor, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return RawTensor{}, fmt.Errorf("reading magic: %w", err)
	}
	if string(pre[:6]) != npyMagic {
		return RawTensor{}, fmt.Errorf("not a .npy file (bad magic)")
	}
	major := pre[6]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return RawTensor{}, fmt.Errorf("reading header length: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return RawTensor{}, fmt.Errorf("reading header length: %w", err)
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > 1<<24 {
			return RawTensor{}, fmt.Errorf("header length %d is implausible", n)
		}
		hlen = int(n)
	default:
		return RawTensor{}, fmt.Errorf("unsupported format version %d.%d", pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return RawTensor{}, fmt.Errorf("reading header: %w", err)
	}
	descr, fortran, shape, err := parseNpyHeader(string(hdr))
	if err != nil {
		return RawTensor{}, fmt.Errorf("header %q: %w", strings.TrimSpace(string(hdr)), err)
	}
	dt, ok := npyToDtype[descr]
	if !ok {
		return RawTensor{}, fmt.Errorf("unsupported dtype %q (want one of <f4 <f2 <f8 <i8 <i4 <i2 |i1 |u1 |b1)", descr)
	}
	if fortran {
		return RawTensor{}, fmt.Errorf("fortran_order arrays are not supported; save with np.ascontiguousarray")
	}
	n, err := checkedByteLen(shape, dt.Size())
	if err != nil {
		return RawTensor{}, err
	}
	if size >= 0 {
		prefix := int64(len(pre)) + int64(hlen) + 2
		if major != 1 {
			prefix += 2
		}
		if n > size-prefix {
			return RawTensor{}, fmt.Errorf("shape %v needs %d data bytes but only %d remain (truncated?)", shape, n, size-prefix)
		}
	}
	data, err := readN(r, n, size >= 0)
	if err != nil {
		return RawTensor{}, fmt.Errorf("reading %d data bytes: %w (truncated?)", n, err)
	}
	return RawTensor{Dtype: dt, Shape: shape, Data: data}, nil
}

// readN reads exactly n bytes. When n was checked against the input's size
// it allocates them at once; otherwise the buffer grows with the data that
// actually arrives, so a header declaring gigabytes over a short stream
// costs no more than the stream.
func readN(r io.Reader, n int64, checked bool) ([]byte, error) {
	if checked || n <= 1<<20 {
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	got, err := io.CopyN(&buf, r, n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("got %d bytes: %w", got, err)
	}
	return buf.Bytes(), nil
}

// parseNpyHeader reads the Python dict literal numpy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. It accepts
// exactly that grammar (three keys in any order) rather than evaluating.
func parseNpyHeader(h string) (descr string, fortran bool, shape []int64, err error) {
	s := strings.TrimSpace(h)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return "", false, nil, fmt.Errorf("not a dict literal")
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	seen := map[string]bool{}
	for s != "" {
		var key string
		if key, s, err = npyString(s); err != nil {
			return "", false, nil, err
		}
		s = strings.TrimSpace(s)
		if !strings.HasPrefix(s, ":") {
			return "", false, nil, fmt.Errorf("expected ':' after %q", key)
		}
		s = strings.TrimSpace(s[1:])
		switch key {
		case "descr":
			if descr, s, err = npyString(s); err != nil {
				return "", false, nil, err
			}
		case "fortran_order":
			switch {
			case strings.HasPrefix(s, "False"):
				fortran, s = false, s[5:]
			case strings.HasPrefix(s, "True"):
				fortran, s = true, s[4:]
			default:
				return "", false, nil, fmt.Errorf("fortran_order is not True or False")
			}
		case "shape":
			if !strings.HasPrefix(s, "(") {
				return "", false, nil, fmt.Errorf("shape is not a tuple")
			}
			end := strings.IndexByte(s, ')')
			if end < 0 {
				return "", false, nil, fmt.Errorf("unterminated shape tuple")
			}
			shape = []int64{}
			for _, part := range strings.Split(s[1:end], ",") {
				part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "L"))
				if part == "" {
					continue
				}
				d, perr := strconv.ParseInt(part, 10, 64)
				if perr != nil || d < 0 {
					return "", false, nil, fmt.Errorf("bad dimension %q", part)
				}
				shape = append(shape, d)
			}
			s = s[end+1:]
		default:
			return "", false, nil, fmt.Errorf("unexpected key %q", key)
		}
		seen[key] = true
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, ",") {
			s = strings.TrimSpace(s[1:])
		} else if s != "" {
			return "", false, nil, fmt.Errorf("expected ',' after %q", key)
		}
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return "", false, nil, fmt.Errorf("missing one of descr, fortran_order, shape")
	}
	return descr, fortran, shape, nil
}

// npyString reads a quoted Python string without escapes (numpy's keys and
// descrs never contain any) and returns it and the rest.
func npyString(s string) (string, string, error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", "", fmt.Errorf("expected a quoted string at %q", s)
	}
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", "", fmt.Errorf("unterminated string")
	}
	return s[1 : 1+end], s[2+end:], nil
}

// WriteNpy writes t as a .npy file atomically (see WriteFileAtomic).
func WriteNpy(path string, t RawTensor) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return EncodeNpy(w, t) })
}

// EncodeNpy writes t in .npy format: version 1.0 unless the header needs
// more than 65535 bytes, padded so the data starts at a multiple of 64 bytes
// as numpy does.
func EncodeNpy(w io.Writer, t RawTensor) error {
	descr, ok := dtypeToNpy[t.Dtype]
	if !ok {
		return fmt.Errorf("npy: dtype %q has no .npy equivalent here", t.Dtype)
	}
	want, err := checkedByteLen(t.Shape, t.Dtype.Size())
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if want != int64(len(t.Data)) {
		return fmt.Errorf("npy: %s%v needs %d bytes, got %d", t.Dtype, t.Shape, want, len(t.Data))
	}
	var shape strings.Builder
	shape.WriteByte('(')
	for i, d := range t.Shape {
		if i > 0 {
			shape.WriteString(", ")
		}
		shape.WriteString(strconv.FormatInt(d, 10))
	}
	if len(t.Shape) == 1 {
		shape.WriteByte(',') // a Python 1-tuple
	}
	shape.WriteByte(')')
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape.String())

	var buf bytes.Buffer
	buf.WriteString(npyMagic)
	lenSize := 2
	if len(dict)+1+10 > 65535 {
		lenSize = 4
	}
	total := len(npyMagic) + 2 + lenSize + len(dict) + 1
	pad := (64 - total%64) % 64
	hlen := len(dict) + pad + 1
	if lenSize == 2 {
		buf.Write([]byte{1, 0})
		binary.Write(&buf, binary.LittleEndian, uint16(hlen))
	} else {
		buf.Write([]byte{2, 0})
		binary.Write(&buf, binary.LittleEndian, uint32(hlen))
	}
	buf.WriteString(dict)
	buf.WriteString(strings.Repeat(" ", pad))
	buf.WriteByte('\n')
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if _, err := w.Write(t.Data); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}
