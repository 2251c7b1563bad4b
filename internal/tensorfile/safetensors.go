package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"syscall"
)

// maxSafetensorsHeader bounds the JSON header as the reference
// implementation does (100 MB), so a corrupt length cannot make us allocate
// or scan gigabytes.
const maxSafetensorsHeader = 100_000_000

// SafetensorsFile is an open, read-only, memory-mapped safetensors file.
// Byte slices it returns are views into the mapping and become invalid after
// Close.
type SafetensorsFile struct {
	path     string
	data     []byte // the whole mapping
	body     []byte // data after the header
	names    []string
	infos    map[string]safetensorsEntry
	metadata map[string]string
}

type safetensorsEntry struct {
	dtype      Dtype
	shape      []int64
	begin, end int64
}

// OpenSafetensors maps path read-only and validates its header: length
// bounds, well-formed JSON, known dtypes, offsets inside the data, no
// overlaps, and byte lengths equal to dtype size × shape.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: file is %d bytes, too short for the 8-byte header length", path, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors %s: file too large to map", path)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mmap: %w", path, err)
	}
	sf, err := parseSafetensors(path, data)
	if err != nil {
		syscall.Munmap(data)
		return nil, err
	}
	return sf, nil
}

// ParseSafetensors validates an in-memory safetensors image; the result
// refers to buf, and its Close does nothing.
func ParseSafetensors(name string, buf []byte) (*SafetensorsFile, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("safetensors %s: %d bytes, too short for the 8-byte header length", name, len(buf))
	}
	sf, err := parseSafetensors(name, buf)
	if err != nil {
		return nil, err
	}
	sf.data = nil // not ours to unmap
	return sf, nil
}

func parseSafetensors(path string, data []byte) (*SafetensorsFile, error) {
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d-byte limit", path, n, maxSafetensorsHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d runs past the end of the %d-byte file (truncated?)", path, n, len(data))
	}
	header := data[8 : 8+n]
	if len(header) == 0 || header[0] != '{' {
		return nil, fmt.Errorf("safetensors %s: header does not start with '{'", path)
	}
	sf := &SafetensorsFile{path: path, data: data, body: data[8+n:], infos: map[string]safetensorsEntry{}}
	raw, err := decodeObjectNoDup(header)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: header JSON: %w", path, err)
	}
	type jsonEntry struct {
		Dtype       string  `json:"dtype"`
		Shape       []int64 `json:"shape"`
		DataOffsets []int64 `json:"data_offsets"`
	}
	for _, kv := range raw {
		if kv.key == "__metadata__" {
			if err := json.Unmarshal(kv.val, &sf.metadata); err != nil {
				return nil, fmt.Errorf("safetensors %s: __metadata__ must map strings to strings: %w", path, err)
			}
			continue
		}
		var e jsonEntry
		dec := json.NewDecoder(bytes.NewReader(kv.val))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, kv.key, err)
		}
		dt := Dtype(e.Dtype)
		if !dt.Valid() {
			return nil, fmt.Errorf("safetensors %s: tensor %q: unknown dtype %q", path, kv.key, e.Dtype)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: missing shape", path, kv.key)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets must be [begin, end]", path, kv.key)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > int64(len(sf.body)) {
			return nil, fmt.Errorf("safetensors %s: tensor %q: data_offsets [%d, %d] outside the %d data bytes", path, kv.key, b, end, len(sf.body))
		}
		want, err := checkedByteLen(e.Shape, dt.Size())
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %w", path, kv.key, err)
		}
		if want != end-b {
			return nil, fmt.Errorf("safetensors %s: tensor %q: %s%v needs %d bytes but data_offsets span %d", path, kv.key, dt, e.Shape, want, end-b)
		}
		sf.infos[kv.key] = safetensorsEntry{dtype: dt, shape: e.Shape, begin: b, end: end}
		sf.names = append(sf.names, kv.key)
	}
	sort.Strings(sf.names)
	if err := sf.checkOverlap(); err != nil {
		return nil, err
	}
	return sf, nil
}

// checkOverlap rejects two tensors sharing bytes: a writer never produces
// that, and aliasing would make in-place edits of one corrupt the other.
func (sf *SafetensorsFile) checkOverlap() error {
	order := append([]string(nil), sf.names...)
	sort.Slice(order, func(i, j int) bool {
		a, b := sf.infos[order[i]], sf.infos[order[j]]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		return a.end < b.end
	})
	var maxEnd int64
	var maxName string
	for _, name := range order {
		cur := sf.infos[name]
		if cur.end > cur.begin && cur.begin < maxEnd {
			prev := sf.infos[maxName]
			return fmt.Errorf("safetensors %s: tensors %q and %q overlap (bytes %d-%d and %d-%d)",
				sf.path, maxName, name, prev.begin, prev.end, cur.begin, cur.end)
		}
		if cur.end > maxEnd {
			maxEnd, maxName = cur.end, name
		}
	}
	return nil
}

type rawKV struct {
	key string
	val json.RawMessage
}

// decodeObjectNoDup decodes one JSON object keeping its members in order and
// rejecting duplicate keys, which encoding/json would silently merge.
func decodeObjectNoDup(b []byte) ([]rawKV, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	seen := map[string]bool{}
	var out []rawKV
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is not a string")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		out = append(out, rawKV{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	// Trailing spaces are the reference padding; anything else is garbage.
	rest := b[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n\x00")) != 0 {
		return nil, fmt.Errorf("trailing data after the header object")
	}
	return out, nil
}

// Path returns the file name the reader was opened with.
func (sf *SafetensorsFile) Path() string { return sf.path }

// Names returns the tensor names, sorted.
func (sf *SafetensorsFile) Names() []string { return append([]string(nil), sf.names...) }

// Has reports whether the file holds a tensor called name.
func (sf *SafetensorsFile) Has(name string) bool { _, ok := sf.infos[name]; return ok }

// Info returns a tensor's dtype and shape; ok is false for an unknown name.
func (sf *SafetensorsFile) Info(name string) (dtype Dtype, shape []int64, ok bool) {
	e, ok := sf.infos[name]
	if !ok {
		return "", nil, false
	}
	return e.dtype, append([]int64(nil), e.shape...), true
}

// Bytes returns a tensor's data as a view into the mapping (nil for an
// unknown name). The slice must not be written to: the map is read-only.
func (sf *SafetensorsFile) Bytes(name string) []byte {
	e, ok := sf.infos[name]
	if !ok {
		return nil
	}
	return sf.body[e.begin:e.end:e.end]
}

// Tensor returns the named tensor, its Data a view into the mapping.
func (sf *SafetensorsFile) Tensor(name string) (RawTensor, error) {
	e, ok := sf.infos[name]
	if !ok {
		return RawTensor{}, fmt.Errorf("safetensors %s: no tensor %q", sf.path, name)
	}
	return RawTensor{Dtype: e.dtype, Shape: append([]int64(nil), e.shape...), Data: sf.body[e.begin:e.end:e.end]}, nil
}

// Float32 returns a copy of the named tensor converted to float32.
func (sf *SafetensorsFile) Float32(name string) ([]float32, error) {
	t, err := sf.Tensor(name)
	if err != nil {
		return nil, err
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", sf.path, name, err)
	}
	return v, nil
}

// Metadata returns the __metadata__ map (nil when absent).
func (sf *SafetensorsFile) Metadata() map[string]string {
	if sf.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(sf.metadata))
	for k, v := range sf.metadata {
		m[k] = v
	}
	return m
}

// Close unmaps the file; views returned earlier must not be used after it.
func (sf *SafetensorsFile) Close() error {
	if sf.data == nil {
		return nil
	}
	err := syscall.Munmap(sf.data)
	sf.data, sf.body = nil, nil
	if err != nil {
		return fmt.Errorf("safetensors %s: munmap: %w", sf.path, err)
	}
	return nil
}
