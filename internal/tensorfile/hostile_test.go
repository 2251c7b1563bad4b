package tensorfile

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
)

// Hostile and corrupt inputs: each must come back as an error, fast and
// without allocating from sizes the file declares but does not back.

// allocatedBy returns the bytes f allocates on the Go heap (cumulative, so
// freed garbage counts too: a transient 1 GB buffer shows up). It reads
// runtime/metrics, which unlike ReadMemStats does not stop the world: cheap
// enough for every fuzz input.
func allocatedBy(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// runPickle runs data through the restricted VM as a torch.save data.pkl
// would be, with every persistent id resolved to a 16-byte storage.
func runPickle(data []byte) error {
	cache := map[string]*storageRef{}
	u := &unpickler{
		name: "test", data: data, resolve: torchResolve(true), call: torchCall,
		persistentLoad: func(pid any) (any, error) {
			s, err := storageFromPid(pid, cache)
			if err != nil {
				return nil, err
			}
			if s.data == nil {
				s.data = make([]byte, 16)
			}
			return s, nil
		},
	}
	obj, err := u.load()
	if err != nil {
		return err
	}
	return (&TorchFile{path: "test"}).collect(obj, cache, len(data))
}

func TestPickleMalformedStacksAreErrors(t *testing.T) {
	cases := map[string]string{
		// TUPLE2 reaching below a MARK, then TUPLE popping the mark: this
		// sliced out of range.
		"tuple2 across mark": "K\x01K\x02(\x86t.",
		"tuple1 after mark":  "K\x01(\x85t.",
		"tuple3 after mark":  "K\x01K\x02K\x03(\x87l.",
		"dup after mark":     "K\x01(2t.",
		"build after mark":   "}(Nb.",
		"append below mark":  "](K\x01a.",
		"setitem below mark": "}(K\x01K\x02s.",
		"stop after mark":    "K\x01(.",
		"pop mark then list": "K\x01(0l.",
	}
	for name, p := range cases {
		if err := runPickle([]byte(p)); err == nil {
			t.Errorf("%s: %q loaded without error", name, p)
		}
	}
	// The same stream inside a torch zip reaches the user as an error
	// naming the file.
	path := writeZip(t, map[string][]byte{"archive/data.pkl": []byte("\x80\x02K\x01K\x02(\x86t.")})
	if _, err := OpenTorch(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "underflow") {
		t.Errorf("OpenTorch: %v", err)
	}
}

// viewPickle is a data.pkl holding one tensor: size and stride over storage
// "0" of numel float32 elements.
func viewPickle(numel int64, size, stride []int64) []byte {
	var p pickleWriter
	p.op(0x80, 2)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", "FloatStorage")
	p.str("0")
	p.str("cpu")
	p.int(numel)
	p.op('t', 'Q')
	p.int(0)
	p.intTuple(size)
	p.intTuple(stride)
	p.op(0x89, ')', 't', 'R', '.')
	return p.buf.Bytes()
}

func TestTorchViewsCannotOutgrowTheirStorage(t *testing.T) {
	one := make([]byte, 4)
	cases := []struct {
		name         string
		size, stride []int64
		want         string
	}{
		// 2^25 float32 broadcast from one element: 128 MiB out of 4 bytes.
		{"broadcast", []int64{1 << 25}, []int64{0}, "expands"},
		// Declared sizes whose product wraps to 0 in int64.
		{"numel overflow", []int64{1 << 40, 1 << 40}, []int64{0, 0}, "overflows"},
		{"stride overflow", []int64{3, 2}, []int64{1 << 62, 1}, "reaches"},
		{"huge dim, tiny stride", []int64{1 << 62}, []int64{1}, "reaches"},
	}
	for _, c := range cases {
		path := writeZip(t, map[string][]byte{"archive/data.pkl": viewPickle(1, c.size, c.stride), "archive/data/0": one})
		var err error
		n := allocatedBy(func() {
			var tf *TorchFile
			if tf, err = OpenTorch(path); err == nil {
				tf.Close()
			}
		})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `tensor "tensor"`) {
			t.Errorf("%s: error %v, want one naming the tensor and %q", c.name, err, c.want)
		}
		if n > 8<<20 {
			t.Errorf("%s: refusing it allocated %d MiB", c.name, n>>20)
		}
	}
	// A small legitimate broadcast (as torch.save writes an expand()ed
	// tensor) still loads, values repeated.
	path := writeZip(t, map[string][]byte{"archive/data.pkl": viewPickle(1, []int64{2, 3}, []int64{0, 0}), "archive/data/0": {0, 0, 0x80, 0x3f}})
	tf, err := OpenTorch(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	rt, _ := tf.Tensor("tensor")
	if v, _ := rt.Float32(); len(v) != 6 || v[0] != 1 || v[5] != 1 {
		t.Errorf("broadcast view: %v", v)
	}
}

func TestGatherBudgetIsSharedAcrossTensors(t *testing.T) {
	// Many transposed views of one storage each need a copy; together they
	// may not exceed the budget even though each alone fits.
	st := &storageRef{key: "0", dtype: F32, numel: 64, data: make([]byte, 256)}
	b := &gatherBudget{left: 1000}
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		_, err = (&tensorRef{storage: st, size: []int64{8, 8}, stride: []int64{1, 8}}).materialize(b)
	}
	if err == nil || !strings.Contains(err.Error(), "budget") {
		t.Errorf("4 x 256 gathered bytes against a 1000-byte budget: %v", err)
	}
}

// sharedPickle builds lists that reference the previous level twice through
// the memo: 2^depth leaves from a few bytes per level.
func sharedPickle(depth int) []byte {
	b := []byte("\x80\x02(K\x01K\x02lq\x00")
	for i := 1; i <= depth; i++ {
		b = append(b, '(', 'h', byte(i-1), 'h', byte(i-1), 'l', 'q', byte(i))
	}
	return append(b, '.')
}

// chainPickle nests depth lists, each holding an int and the next list.
func chainPickle(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x02")
	for i := 0; i < depth; i++ {
		b.WriteString("(K\x01")
	}
	b.WriteString("]")
	for i := 0; i < depth; i++ {
		b.WriteString("l")
	}
	b.WriteString(".")
	return b.Bytes()
}

func TestFlattenIsBoundedOnSharedAndDeepGraphs(t *testing.T) {
	for name, p := range map[string][]byte{"shared": sharedPickle(20), "deep": chainPickle(5000)} {
		var err error
		n := allocatedBy(func() { err = runPickle(p) })
		if err == nil {
			t.Errorf("%s (%d bytes): loaded without error", name, len(p))
		} else if !strings.Contains(err.Error(), "too") {
			t.Errorf("%s: %v", name, err)
		}
		if n > 64<<20 {
			t.Errorf("%s: %d MiB allocated for a %d-byte pickle", name, n>>20, len(p))
		}
	}
	// Sharing a little is fine (tied weights, a dict referenced twice).
	if err := runPickle(sharedPickle(3)); err != nil {
		t.Errorf("shared depth 3: %v", err)
	}
}

func TestPickleTextOpcodesAreLinear(t *testing.T) {
	// 20000 text INTs inside one tuple: reading each line must not copy the
	// rest of the stream.
	var b bytes.Buffer
	b.WriteString("(")
	for i := 0; i < 20000; i++ {
		b.WriteString("I1\n")
	}
	b.WriteString("t.")
	u := &unpickler{name: "test", data: b.Bytes()}
	var err error
	n := allocatedBy(func() { _, err = u.load() })
	if err != nil {
		t.Fatal(err)
	}
	if limit := uint64(64*b.Len()) + 1<<20; n > limit {
		t.Errorf("%d-byte pickle allocated %d bytes (limit %d)", b.Len(), n, limit)
	}
}

func TestPickleRefusesHugeIntegers(t *testing.T) {
	long4 := append([]byte{0x8b, 0, 0, 1, 0}, make([]byte, 1<<16)...)
	for name, p := range map[string][]byte{
		"LONG text": []byte("L" + strings.Repeat("9", 100000) + "L\n."),
		"LONG4":     append(long4, '.'),
	} {
		u := &unpickler{name: "test", data: p}
		if _, err := u.load(); err == nil || !strings.Contains(err.Error(), "too long") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPickleRefusesNestedRebuildFromType(t *testing.T) {
	g := pyGlobal{"torch._tensor", "_rebuild_from_type_v2"}
	args := pyTuple{g, pyGlobal{"torch", "Tensor"}, pyTuple{}, nil}
	for i := 0; i < 3; i++ {
		args = pyTuple{g, pyGlobal{"torch", "Tensor"}, args, nil}
	}
	if _, err := torchCall(g, args); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("nested _rebuild_from_type_v2: %v", err)
	}
}

func TestTorchRefusesCompressedEntries(t *testing.T) {
	// torch.save stores every record; a deflated one could expand without
	// bound, so it is refused rather than inflated.
	src, err := zip.OpenReader(filepath.Join("testdata", "sd_zip.pt"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range src.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(mustReadAll(t, rc)); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "deflated.pt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTorch(path); err == nil || !strings.Contains(err.Error(), "compressed") || !strings.Contains(err.Error(), "data.pkl") {
		t.Errorf("deflated archive: %v", err)
	}
}

func mustReadAll(t *testing.T, r interface{ Read([]byte) (int, error) }) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeNpyUnknownSizeDoesNotTrustTheShape(t *testing.T) {
	// 256 MiB declared, 10 bytes present, stream length unknown.
	dict := "{'descr': '|u1', 'fortran_order': False, 'shape': (268435456,), }\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(dict)), 0)
	b = append(append(b, dict...), make([]byte, 10)...)
	var err error
	n := allocatedBy(func() { _, err = DecodeNpy(bytes.NewReader(b), -1) })
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %v, want truncated", err)
	}
	if n > 8<<20 {
		t.Errorf("a 10-byte body made the reader allocate %d MiB", n>>20)
	}
	// The unknown-size path still reads a real array.
	f4 := mustRead(t, filepath.Join("testdata", "f4.npy"))
	got, err := DecodeNpy(bytes.NewReader(f4), -1)
	if err != nil {
		t.Fatal(err)
	}
	assertTensor(t, "f4 unknown size", got, loadFixtures(t)["f4.npy"].fixtureTensor)
}
