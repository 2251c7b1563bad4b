package tensorfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestSafetensorsReadsReferenceFile(t *testing.T) {
	fx := loadFixtures(t)["ref.safetensors"]
	path := filepath.Join("testdata", "ref.safetensors")
	sf, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	want := append([]string(nil), fx.Order...)
	sort.Strings(want)
	if !reflect.DeepEqual(sf.Names(), want) {
		t.Fatalf("names %v, want %v", sf.Names(), want)
	}
	for name, ft := range fx.Tensors {
		dt, shape, ok := sf.Info(name)
		if !ok {
			t.Fatalf("Info(%q) missing", name)
		}
		assertTensor(t, name, RawTensor{Dtype: dt, Shape: shape, Data: sf.Bytes(name)}, ft)
	}
	if !reflect.DeepEqual(sf.Metadata(), fx.Metadata) {
		t.Errorf("metadata %v, want %v", sf.Metadata(), fx.Metadata)
	}
	if _, _, ok := sf.Info("nope"); ok || sf.Bytes("nope") != nil {
		t.Error("unknown name reported present")
	}
	f, err := sf.Float32("b.f32")
	if err != nil || len(f) != 6 {
		t.Fatalf("Float32: %v %v", f, err)
	}
	if _, err := sf.Tensor("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Tensor(nope) error %v", err)
	}
}

// The Go writer must produce byte-for-byte what the independent Python
// implementation of the spec (gen.py) wrote: same layout order, same JSON,
// same padding.
func TestSafetensorsWriterMatchesReferenceBytes(t *testing.T) {
	fx := loadFixtures(t)["ref.safetensors"]
	tensors := map[string]RawTensor{}
	for name, ft := range fx.Tensors {
		tensors[name] = ft.raw(t)
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	if err := WriteSafetensors(out, tensors, fx.Metadata); err != nil {
		t.Fatal(err)
	}
	got, want := mustRead(t, out), mustRead(t, filepath.Join("testdata", "ref.safetensors"))
	if !bytes.Equal(got, want) {
		t.Fatalf("writer output differs from reference:\n got %q\nwant %q", got[:min(len(got), 200)], want[:min(len(want), 200)])
	}
	n := binary.LittleEndian.Uint64(got)
	if n%8 != 0 {
		t.Errorf("header length %d not 8-aligned", n)
	}
	// Every tensor starts at a multiple of its element size.
	sf, err := OpenSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	for _, name := range sf.Names() {
		e := sf.infos[name]
		if (8+int64(n)+e.begin)%int64(e.dtype.Size()) != 0 {
			t.Errorf("%s misaligned at %d", name, e.begin)
		}
	}
}

func TestSafetensorsRoundTripNoMetadata(t *testing.T) {
	b, _ := FromFloat32(F32, []float32{1, 2, 3, 4})
	in := map[string]RawTensor{"w": {Dtype: F32, Shape: []int64{2, 2}, Data: b}, "s": {Dtype: U8, Shape: nil, Data: []byte{7}}}
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, in, nil); err != nil {
		t.Fatal(err)
	}
	sf, err := ParseSafetensors("mem", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if sf.Metadata() != nil {
		t.Error("metadata appeared")
	}
	got, _ := sf.Float32("w")
	if !reflect.DeepEqual(got, []float32{1, 2, 3, 4}) {
		t.Errorf("w = %v", got)
	}
	if _, shape, _ := sf.Info("s"); len(shape) != 0 || sf.Bytes("s")[0] != 7 {
		t.Errorf("scalar shape %v", shape)
	}
}

func TestSafetensorsWriterRejectsBadTensors(t *testing.T) {
	cases := map[string]map[string]RawTensor{
		"needs 8 bytes":  {"x": {Dtype: F32, Shape: []int64{2}, Data: []byte{1}}},
		"unknown dtype":  {"x": {Dtype: "F12", Shape: []int64{}, Data: nil}},
		"reserved":       {"__metadata__": {Dtype: U8, Shape: []int64{}, Data: []byte{0}}},
		"negative dimen": {"x": {Dtype: U8, Shape: []int64{-1}, Data: nil}},
	}
	for want, tensors := range cases {
		err := EncodeSafetensors(io.Discard, tensors, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
}

// header builds a safetensors image with the given raw JSON and data size.
func stImage(hdr string, data int) []byte {
	b := make([]byte, 8, 8+len(hdr)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, make([]byte, data)...)
}

func TestSafetensorsRejectsBadFiles(t *testing.T) {
	good := mustRead(t, filepath.Join("testdata", "ref.safetensors"))
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	cases := []struct {
		name, want string
		img        []byte
	}{
		{"tiny", "too short", []byte{1, 2, 3}},
		{"truncated header", "past the end", good[:40]},
		{"truncated data", "outside the", good[:len(good)-3]},
		{"huge header length", "exceeds", huge},
		{"not an object", "does not start with '{'", stImage(`[1]`, 0)},
		{"bad json", "header JSON", stImage(`{"a":{"dtype":"F32",`, 0)},
		{"duplicate", `duplicate key "a"`, stImage(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2)},
		{"unknown dtype", `tensor "a": unknown dtype "F7"`, stImage(`{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, 1)},
		{"unknown field", `tensor "a"`, stImage(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1)},
		{"offsets out of range", `tensor "a": data_offsets [0, 8] outside the 4 data bytes`, stImage(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4)},
		{"reversed offsets", `tensor "a": data_offsets [4, 0]`, stImage(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4)},
		{"size mismatch", `tensor "a": F32[3] needs 12 bytes but data_offsets span 8`, stImage(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8)},
		{"negative dim", `tensor "a": negative dimension`, stImage(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0)},
		{"overlap", `tensors "a" and "b" overlap`, stImage(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4)},
		{"missing shape", `tensor "a": missing shape`, stImage(`{"a":{"dtype":"U8","data_offsets":[0,0]}}`, 0)},
		{"bad metadata", "__metadata__", stImage(`{"__metadata__":{"a":1}}`, 0)},
		{"trailing garbage", "trailing data", stImage(`{}  x`, 0)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		if err := os.WriteFile(path, c.img, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, err := OpenSafetensors(path)
		if err == nil {
			sf.Close()
			t.Errorf("%s: opened without error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q should mention %q and the file", c.name, err, c.want)
		}
	}
	if _, err := OpenSafetensors(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Error("missing file opened")
	}
}

func TestWriteFileAtomicKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if got := string(mustRead(t, path)); got != "old" {
		t.Errorf("file now %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp file left behind: %v", entries)
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, path)); got != "new" {
		t.Errorf("file now %q", got)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
}
