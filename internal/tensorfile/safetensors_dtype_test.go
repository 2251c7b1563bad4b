package tensorfile

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

func readNpyF32(t *testing.T, name string) []float32 {
	t.Helper()
	rt, err := ReadNpy(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := rt.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// Every one of the 65536 half values must widen exactly as numpy does.
func TestFloat16ToFloat32AllValues(t *testing.T) {
	want := readNpyF32(t, "f16_to_f32.npy")
	if len(want) != 65536 {
		t.Fatalf("table has %d entries", len(want))
	}
	all := make([]byte, 2*65536)
	for h := 0; h < 65536; h++ {
		binary.LittleEndian.PutUint16(all[2*h:], uint16(h))
	}
	viaTable, err := ToFloat32(F16, all)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for h := 0; h < 65536; h++ {
		if !sameFloat(viaTable[h], want[h]) {
			if bad++; bad < 5 {
				t.Errorf("ToFloat32 half 0x%04x: got %g, numpy %g", h, viaTable[h], want[h])
			}
		}
		if got := Float16ToFloat32(uint16(h)); !sameFloat(got, want[h]) {
			if bad++; bad < 5 {
				t.Errorf("half 0x%04x: got %g, numpy %g", h, got, want[h])
			}
		}
	}
}

// Narrowing must match numpy (float16) and torch (bfloat16) rounding on
// edge cases and ~16k random values.
func TestFloat32NarrowingMatchesNumpyAndTorch(t *testing.T) {
	vals := readNpyF32(t, "f32_values.npy")
	f16, err := ReadNpy(filepath.Join("testdata", "f32_to_f16.npy"))
	if err != nil {
		t.Fatal(err)
	}
	bf, err := ReadNpy(filepath.Join("testdata", "f32_to_bf16.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if f16.Dtype != F16 || bf.Dtype != I32 || len(f16.Data) != 2*len(vals) || len(bf.Data) != 4*len(vals) {
		t.Fatalf("fixture shapes: %s %d, %s %d for %d values", f16.Dtype, len(f16.Data), bf.Dtype, len(bf.Data), len(vals))
	}
	bad := 0
	for i, v := range vals {
		wantH := binary.LittleEndian.Uint16(f16.Data[2*i:])
		if got := Float32ToFloat16(v); got != wantH && !(v != v) {
			if bad++; bad < 5 {
				t.Errorf("f16(%g): got 0x%04x, numpy 0x%04x", v, got, wantH)
			}
		}
		wantB := uint16(binary.LittleEndian.Uint32(bf.Data[4*i:]))
		if got := Float32ToBFloat16(v); got != wantB && !(v != v) {
			if bad++; bad < 10 {
				t.Errorf("bf16(%g): got 0x%04x, torch 0x%04x", v, got, wantB)
			}
		}
	}
}

func TestToFloat32AndFromFloat32(t *testing.T) {
	in := []float32{0, 1, -2.5, 65504, 1.0 / 3}
	for _, dt := range []Dtype{F32, F64, F16, BF16} {
		b, err := FromFloat32(dt, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != len(in)*dt.Size() {
			t.Fatalf("%s: %d bytes", dt, len(b))
		}
		out, err := ToFloat32(dt, b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range in {
			tol := map[Dtype]float64{F32: 0, F64: 0, F16: 1e-3, BF16: 8e-3}[dt]
			if d := math.Abs(float64(out[i] - in[i])); d > tol*math.Abs(float64(in[i])) {
				t.Errorf("%s: %g -> %g", dt, in[i], out[i])
			}
		}
	}
	ints := map[Dtype][]byte{
		I64: {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, I32: {0xfe, 0xff, 0xff, 0xff},
		I16: {0xfe, 0xff}, I8: {0xfe}, U8: {0xfe}, BOOL: {1},
	}
	want := map[Dtype]float32{I64: -2, I32: -2, I16: -2, I8: -2, U8: 254, BOOL: 1}
	for dt, b := range ints {
		out, err := ToFloat32(dt, b)
		if err != nil || len(out) != 1 || out[0] != want[dt] {
			t.Errorf("%s: %v %v", dt, out, err)
		}
	}
	if _, err := ToFloat32(F32, []byte{1, 2, 3}); err == nil {
		t.Error("ragged bytes accepted")
	}
	if _, err := ToFloat32("F8_E4M3", []byte{1}); err == nil {
		t.Error("F8 conversion should be refused")
	}
	if _, err := ToFloat32("X", nil); err == nil {
		t.Error("unknown dtype accepted")
	}
	if _, err := FromFloat32(I32, in); err == nil {
		t.Error("FromFloat32(I32) accepted")
	}
}

// Quantized model files store I8 weights and BF16 bit patterns: both must
// round-trip through the writer and reader byte for byte (values are not
// converted), next to F32 scales, each tensor aligned to its element size.
func TestSafetensorsRoundTripsI8AndBF16(t *testing.T) {
	in := map[string]RawTensor{
		"w.i8":    {Dtype: I8, Shape: []int64{2, 3}, Data: []byte{0x81, 0x7f, 0, 1, 0xff, 0x80}},
		"w.bf16":  {Dtype: BF16, Shape: []int64{3}, Data: []byte{0x80, 0x3f, 0xc1, 0xff, 0x01, 0x7f}},
		"w_scale": {Dtype: F32, Shape: []int64{2}, Data: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}},
	}
	path := filepath.Join(t.TempDir(), "q.safetensors")
	if err := WriteSafetensors(path, in, map[string]string{"precision": "int8"}); err != nil {
		t.Fatal(err)
	}
	sf, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	for name, want := range in {
		got, err := sf.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Dtype != want.Dtype || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: %s%v %x, want %s%v %x", name, got.Dtype, got.Shape, got.Data, want.Dtype, want.Shape, want.Data)
		}
	}
	if v, _ := ToFloat32(I8, in["w.i8"].Data); v[0] != -127 || v[5] != -128 {
		t.Errorf("I8 values %v", v)
	}
	if sf.Metadata()["precision"] != "int8" {
		t.Errorf("metadata %v", sf.Metadata())
	}
}
