package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// goWrittenTensors is the state dict behind testdata/go_written.pt: every
// torch dtype, a scalar, an empty tensor, a 5-d shape (MARK-built tuples),
// a size-1 dimension and a storage above 65535 elements (BININT).
func goWrittenTensors() map[string]RawTensor {
	seq := func(n int, f func(i int) float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	enc := func(dt Dtype, v []float32) []byte { b, _ := FromFloat32(dt, v); return b }
	i64 := make([]byte, 8*3)
	for i, x := range []int64{-1, 1 << 40, 7} {
		binary.LittleEndian.PutUint64(i64[8*i:], uint64(x))
	}
	i32 := make([]byte, 4*2)
	binary.LittleEndian.PutUint32(i32, uint32(0xfffffffe))
	binary.LittleEndian.PutUint32(i32[4:], 5)
	return map[string]RawTensor{
		"clip_project.model.0.weight": {F32, []int64{4, 3}, enc(F32, seq(12, func(i int) float32 { return float32(i)/3 - 1 }))},
		"clip_project.model.0.bias":   {F32, []int64{4}, enc(F32, []float32{0.5, -0.25, 1e-7, 3e8})},
		"gpt.half":                    {F16, []int64{2, 1, 3}, enc(F16, seq(6, func(i int) float32 { return float32(i) * 0.1 }))},
		"gpt.bf16":                    {BF16, []int64{3}, enc(BF16, []float32{1, -2, 0.15625})},
		"f64":                         {F64, []int64{2}, enc(F64, []float32{1.5, -0.75})},
		"i64":                         {I64, []int64{3}, i64},
		"i32":                         {I32, []int64{2}, i32},
		"u8":                          {U8, []int64{2}, []byte{0, 255}},
		"i8":                          {I8, []int64{1}, []byte{0x80}},
		"bool":                        {BOOL, []int64{2}, []byte{1, 0}},
		"scalar":                      {F32, []int64{}, enc(F32, []float32{42})},
		"empty":                       {F32, []int64{0, 5}, []byte{}},
		"five_d":                      {U8, []int64{1, 2, 1, 2, 2}, []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		"big":                         {U8, []int64{70000}, bytes.Repeat([]byte{9}, 70000)},
	}
}

func TestTorchWriterRoundTrip(t *testing.T) {
	in := goWrittenTensors()
	path := filepath.Join(t.TempDir(), "ckpt.pt")
	if err := WriteTorch(path, in); err != nil {
		t.Fatal(err)
	}
	tf, err := OpenTorch(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	names := tf.Names()
	if len(names) != len(in) {
		t.Fatalf("%d tensors back, wrote %d", len(names), len(in))
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("names not sorted: %q before %q", names[i-1], names[i])
		}
	}
	for name, want := range in {
		got, err := tf.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		assertTensor(t, name, got, fixtureTensor{Dtype: want.Dtype, Shape: want.Shape, Hex: hexOf(want.Data)})
	}
	// Records are 64-byte aligned, so every tensor is a view into the map.
	for name := range in {
		got, _ := tf.Tensor(name)
		if len(got.Data) == 0 {
			continue
		}
		off := int64(0)
		for i := range tf.mapping {
			if &tf.mapping[i] == &got.Data[0] {
				off = int64(i)
				break
			}
		}
		if off == 0 || off%64 != 0 {
			t.Errorf("%s: data at offset %d, want a 64-byte aligned view", name, off)
		}
	}
}

// testdata/go_written.pt is this writer's output, loaded once by torch.load
// (testdata/verify_go_written.py) whose view of it is go_written_torch.json.
// The writer must still produce those exact bytes, and torch's view must
// equal the tensors we wrote.
func TestTorchWriterOutputLoadsInTorch(t *testing.T) {
	in := goWrittenTensors()
	var buf bytes.Buffer
	if err := EncodeTorch(&buf, in); err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join("testdata", "go_written.pt")
	if os.Getenv("CLIPCAP_REGEN_WEIGHTS") != "" {
		if err := os.WriteFile(fixture, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Skip("regenerated; now run testdata/verify_go_written.py")
	}
	if !bytes.Equal(buf.Bytes(), mustRead(t, fixture)) {
		t.Fatal("writer output changed since torch verified it; regenerate with CLIPCAP_REGEN_WEIGHTS=1 and rerun verify_go_written.py")
	}
	var seen struct {
		Type    string                   `json:"type"`
		Tensors map[string]fixtureTensor `json:"tensors"`
		Order   []string                 `json:"order"`
	}
	if err := json.Unmarshal(mustRead(t, filepath.Join("testdata", "go_written_torch.json")), &seen); err != nil {
		t.Fatal(err)
	}
	if seen.Type != "OrderedDict" {
		t.Errorf("torch.load returned %s, want OrderedDict", seen.Type)
	}
	if len(seen.Tensors) != len(in) {
		t.Errorf("torch saw %d tensors, wrote %d", len(seen.Tensors), len(in))
	}
	for name, want := range in {
		got, ok := seen.Tensors[name]
		if !ok {
			t.Errorf("torch did not see %q", name)
			continue
		}
		assertTensor(t, "torch:"+name, got.raw(t), fixtureTensor{Dtype: want.Dtype, Shape: want.Shape, Hex: hexOf(want.Data)})
	}
}

func TestTorchWriterRejectsBadTensors(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeTorch(&buf, map[string]RawTensor{"x": {Dtype: F32, Shape: []int64{3}, Data: []byte{1}}}); err == nil {
		t.Error("short data accepted")
	}
	if err := EncodeTorch(&buf, map[string]RawTensor{"x": {Dtype: "F8_E4M3", Shape: []int64{1}, Data: []byte{1}}}); err == nil {
		t.Error("dtype without a torch storage accepted")
	}
}
