package tensorfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// WriteSafetensors writes tensors (and optional __metadata__) to path
// atomically: a temporary file in the same directory is written, synced and
// renamed over path, then the directory is synced, so a crash leaves either
// the old file or the complete new one.
func WriteSafetensors(path string, tensors map[string]RawTensor, metadata map[string]string) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		return EncodeSafetensors(w, tensors, metadata)
	})
}

// EncodeSafetensors writes the safetensors encoding of tensors to w. The
// output is deterministic: tensors are laid out by decreasing element size,
// then by name (as the reference implementation orders them, so every
// tensor starts at a multiple of its element size), and the header is padded
// with spaces to a multiple of 8 bytes.
func EncodeSafetensors(w io.Writer, tensors map[string]RawTensor, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name, t := range tensors {
		if name == "__metadata__" {
			return fmt.Errorf("safetensors: %q is reserved and cannot name a tensor", name)
		}
		if !t.Dtype.Valid() {
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, t.Dtype)
		}
		want, err := checkedByteLen(t.Shape, t.Dtype.Size())
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if want != int64(len(t.Data)) {
			return fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, got %d", name, t.Dtype, t.Shape, want, len(t.Data))
		}
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		si, sj := tensors[names[i]].Dtype.Size(), tensors[names[j]].Dtype.Size()
		if si != sj {
			return si > sj
		}
		return names[i] < names[j]
	})

	// Build the header by hand: encoding/json sorts map keys, but we want
	// __metadata__ first and tensors in layout order.
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		sep()
		m, err := json.Marshal(metadata) // sorted keys: deterministic
		if err != nil {
			return fmt.Errorf("safetensors: __metadata__: %w", err)
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(m)
	}
	var off int64
	for _, name := range names {
		t := tensors[name]
		sep()
		k, _ := json.Marshal(name)
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		s, _ := json.Marshal(shape)
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, k, t.Dtype, s, off, off+int64(len(t.Data)))
		off += int64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}

	bw := bufio.NewWriterSize(w, 1<<20)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(hdr.Len()))
	bw.Write(n[:])
	bw.Write(hdr.Bytes())
	for _, name := range names {
		if _, err := bw.Write(tensors[name].Data); err != nil {
			return fmt.Errorf("safetensors: writing %q: %w", name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// WriteFileAtomic creates path with the bytes fill writes, atomically: it
// writes a temporary file in the same directory, fsyncs it, renames it over
// path and fsyncs the directory. On any error the temporary file is removed
// and an existing path is left untouched.
func WriteFileAtomic(path string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes 0600 files; weights are ordinary shared files.
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// Make the rename durable; some filesystems refuse to sync a
		// directory, which loses nothing we could recover anyway.
		d.Sync()
		d.Close()
	}
	return nil
}

// WriteBytesAtomic is WriteFileAtomic for data already in memory (configs,
// manifests, reports): readers see the old file or the new one, never half.
func WriteBytesAtomic(path string, data []byte) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
