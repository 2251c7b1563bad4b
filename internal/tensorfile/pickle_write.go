package tensorfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strconv"
)

// torchStorageClass names the storage class torch.load expects per dtype.
var torchStorageClass = map[Dtype]string{}

func init() {
	for cls, dt := range storageDtypes {
		torchStorageClass[dt] = cls
	}
}

// WriteTorch writes a flat state dict as a torch.save zip archive that
// torch.load returns as an OrderedDict of tensors (what the official ClipCap
// code feeds to load_state_dict). Names are written sorted; the write is
// atomic (see WriteFileAtomic).
func WriteTorch(path string, tensors map[string]RawTensor) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return EncodeTorch(w, tensors) })
}

// EncodeTorch writes the torch.save zip encoding of a flat state dict to w:
// archive/data.pkl (pickle protocol 2, as torch.save uses), archive/byteorder,
// one archive/data/<i> record per tensor and archive/version, all stored
// uncompressed with data aligned to 64 bytes like torch's own writer.
func EncodeTorch(w io.Writer, tensors map[string]RawTensor) error {
	names := make([]string, 0, len(tensors))
	for name, t := range tensors {
		if _, ok := torchStorageClass[t.Dtype]; !ok {
			return fmt.Errorf("torch: tensor %q: dtype %q has no torch storage type", name, t.Dtype)
		}
		want, err := checkedByteLen(t.Shape, t.Dtype.Size())
		if err != nil {
			return fmt.Errorf("torch: tensor %q: %w", name, err)
		}
		if want != int64(len(t.Data)) {
			return fmt.Errorf("torch: tensor %q: %s%v needs %d bytes, got %d", name, t.Dtype, t.Shape, want, len(t.Data))
		}
		names = append(names, name)
	}
	sort.Strings(names)

	cw := &countingWriter{w: bufio.NewWriterSize(w, 1<<20)}
	zw := zip.NewWriter(cw)
	put := func(name string, data []byte) error {
		if err := zw.Flush(); err != nil {
			return err
		}
		// Pad the local header's extra field so the data starts on a
		// 64-byte boundary, which lets readers map tensors in place.
		const fixed = 30
		hdrEnd := cw.n + fixed + int64(len(name)) + 4
		pad := (64 - hdrEnd%64) % 64
		extra := make([]byte, 4+pad)
		binary.LittleEndian.PutUint16(extra[0:], 0x4246) // "FB", torch's padding id
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		fh := &zip.FileHeader{
			Name:               name,
			Method:             zip.Store,
			CRC32:              crc32.ChecksumIEEE(data),
			CompressedSize64:   uint64(len(data)),
			UncompressedSize64: uint64(len(data)),
			Extra:              extra,
		}
		fw, err := zw.CreateRaw(fh)
		if err != nil {
			return err
		}
		_, err = fw.Write(data)
		return err
	}
	if err := put("archive/data.pkl", torchStateDictPickle(names, tensors)); err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	if err := put("archive/byteorder", []byte("little")); err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	for i, name := range names {
		if err := put("archive/data/"+strconv.Itoa(i), tensors[name].Data); err != nil {
			return fmt.Errorf("torch: tensor %q: %w", name, err)
		}
	}
	if err := put("archive/version", []byte("3\n")); err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return fmt.Errorf("torch: %w", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// torchStateDictPickle emits, with protocol 2 opcodes,
//
//	OrderedDict([(name, _rebuild_tensor_v2(storage_i, 0, shape, stride,
//	             False, OrderedDict())), ...])
//
// where storage_i is the persistent id ('storage', torch.<T>Storage, "i",
// "cpu", numel) that torch.load resolves to archive/data/i.
func torchStateDictPickle(names []string, tensors map[string]RawTensor) []byte {
	var p pickleWriter
	p.op(0x80, 2) // PROTO 2
	p.global("collections", "OrderedDict")
	p.op(')', 'R') // EMPTY_TUPLE, REDUCE
	p.op('(')      // MARK for SETITEMS
	for i, name := range names {
		t := tensors[name]
		p.str(name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.op('(') // MARK: args tuple
		p.op('(') // MARK: persistent id tuple
		p.str("storage")
		p.global("torch", torchStorageClass[t.Dtype])
		p.str(strconv.Itoa(i))
		p.str("cpu")
		p.int(t.NumElements())
		p.op('t', 'Q') // TUPLE, BINPERSID
		p.int(0)       // storage offset
		p.intTuple(t.Shape)
		p.intTuple(contiguousStrides(t.Shape))
		p.op(0x89) // NEWFALSE: requires_grad
		p.global("collections", "OrderedDict")
		p.op(')', 'R')       // backward hooks: OrderedDict()
		p.op('t', 'R')       // TUPLE, REDUCE
		if (i+1)%1000 == 0 { // SETITEMS batches like pickle's (any size is valid)
			p.op('u', '(')
		}
	}
	p.op('u', '.') // SETITEMS, STOP
	return p.buf.Bytes()
}

func contiguousStrides(shape []int64) []int64 {
	st := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		if shape[i] > 1 {
			acc *= shape[i]
		}
	}
	return st
}

// pickleWriter emits the few protocol-2 opcodes the state-dict pickle needs.
type pickleWriter struct{ buf bytes.Buffer }

func (p *pickleWriter) op(b ...byte) { p.buf.Write(b) }

func (p *pickleWriter) global(mod, name string) {
	p.buf.WriteByte('c')
	p.buf.WriteString(mod + "\n" + name + "\n")
}

func (p *pickleWriter) str(s string) {
	p.buf.WriteByte('X') // BINUNICODE
	binary.Write(&p.buf, binary.LittleEndian, uint32(len(s)))
	p.buf.WriteString(s)
}

func (p *pickleWriter) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.op('K', byte(v))
	case v >= 0 && v < 1<<16:
		p.op('M', byte(v), byte(v>>8))
	case v >= -1<<31 && v < 1<<31:
		p.buf.WriteByte('J')
		binary.Write(&p.buf, binary.LittleEndian, int32(v))
	default: // LONG1: little-endian two's complement, 8 bytes is enough
		p.op(0x8a, 8)
		binary.Write(&p.buf, binary.LittleEndian, v)
	}
}

func (p *pickleWriter) intTuple(v []int64) {
	switch len(v) {
	case 0:
		p.op(')')
	case 1, 2, 3:
		for _, x := range v {
			p.int(x)
		}
		p.op(byte(0x84 + len(v))) // TUPLE1..3
	default:
		p.op('(')
		for _, x := range v {
			p.int(x)
		}
		p.op('t')
	}
}
