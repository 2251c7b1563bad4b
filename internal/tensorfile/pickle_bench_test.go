package tensorfile

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchTensors is a GPT-2-like state dict: 48 tensors, 64 MiB of float32.
func benchTensors() (map[string]RawTensor, int64) {
	m := map[string]RawTensor{}
	var total int64
	for i := 0; i < 48; i++ {
		n := int64(1 << 18) // 1 MiB per tensor
		m[fmt.Sprintf("transformer.h.%d.w", i)] = RawTensor{Dtype: F32, Shape: []int64{512, 512}, Data: make([]byte, 4*n)}
		total += 4 * n
	}
	m["wte"] = RawTensor{Dtype: F32, Shape: []int64{4096, 1024}, Data: make([]byte, 4*4096*1024)}
	total += 4 * 4096 * 1024
	return m, total
}

// Opening maps the file and slices tensors out of it: cost is independent
// of the data size (SetBytes makes the MB/s figure comparable to a copy).
func BenchmarkOpenTorch(b *testing.B) {
	m, total := benchTensors()
	path := filepath.Join(b.TempDir(), "b.pt")
	if err := WriteTorch(path, m); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tf, err := OpenTorch(path)
		if err != nil {
			b.Fatal(err)
		}
		tf.Close()
	}
}

func BenchmarkOpenSafetensors(b *testing.B) {
	m, total := benchTensors()
	path := filepath.Join(b.TempDir(), "b.safetensors")
	if err := WriteSafetensors(path, m, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sf, err := OpenSafetensors(path)
		if err != nil {
			b.Fatal(err)
		}
		sf.Close()
	}
}

func BenchmarkWriteTorch(b *testing.B) {
	m, total := benchTensors()
	dir := b.TempDir()
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := WriteTorch(filepath.Join(dir, "b.pt"), m); err != nil {
			b.Fatal(err)
		}
	}
}

// A transposed (non-contiguous) 1024x1024 float32 view must be gathered.
func BenchmarkMaterializeTransposed(b *testing.B) {
	st := &storageRef{key: "0", dtype: F32, numel: 1 << 20, data: make([]byte, 4<<20)}
	t := &tensorRef{storage: st, size: []int64{1024, 1024}, stride: []int64{1, 1024}}
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		if _, err := t.materialize(&gatherBudget{left: 1 << 62}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToFloat32F16(b *testing.B) {
	data := make([]byte, 2<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := ToFloat32(F16, data); err != nil {
			b.Fatal(err)
		}
	}
}
