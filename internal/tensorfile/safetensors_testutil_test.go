package tensorfile

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fixture is one file's entry in testdata/expected.json (see gen.py).
type fixture struct {
	Order    []string                 `json:"order"`
	Tensors  map[string]fixtureTensor `json:"tensors"`
	Metadata map[string]string        `json:"metadata"`
	Values   map[string]any           `json:"values"`
	// single-array files (.npy)
	fixtureTensor
}

type fixtureTensor struct {
	Dtype Dtype   `json:"dtype"`
	Shape []int64 `json:"shape"`
	Hex   string  `json:"hex"`
}

func (ft fixtureTensor) raw(t *testing.T) RawTensor {
	t.Helper()
	b, err := hex.DecodeString(ft.Hex)
	if err != nil {
		t.Fatal(err)
	}
	shape := ft.Shape
	if shape == nil {
		shape = []int64{}
	}
	return RawTensor{Dtype: ft.Dtype, Shape: shape, Data: b}
}

func loadFixtures(t *testing.T) map[string]fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]fixture
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// assertTensor compares dtype, shape and every byte.
func assertTensor(t *testing.T, name string, got RawTensor, want fixtureTensor) {
	t.Helper()
	w := want.raw(t)
	if got.Dtype != w.Dtype {
		t.Errorf("%s: dtype %s, want %s", name, got.Dtype, w.Dtype)
	}
	gs := got.Shape
	if gs == nil {
		gs = []int64{}
	}
	if !reflect.DeepEqual(gs, w.Shape) {
		t.Errorf("%s: shape %v, want %v", name, gs, w.Shape)
	}
	if hex.EncodeToString(got.Data) != want.Hex {
		t.Errorf("%s: data %x, want %s", name, got.Data, want.Hex)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
