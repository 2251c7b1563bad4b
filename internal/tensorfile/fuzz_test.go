package tensorfile

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets for every reader of untrusted tensor files. Beyond "no
// panic", each checks that the reader allocates in proportion to its input
// (plus a fixed slack), never to the sizes the input declares. Run them with
// scripts/fuzz.sh; `go test` runs the seeds and testdata/fuzz regressions.

// fuzzAllocLimit is the heap a reader may allocate for an n-byte input.
func fuzzAllocLimit(n int) uint64 { return 32<<20 + 64*uint64(n) }

// smallGatherSlack lowers the per-file allowance for broadcast views while
// fuzzing, so the allocation check can be tight.
func smallGatherSlack(f *testing.F) {
	old := gatherSlack
	gatherSlack = 1 << 20
	f.Cleanup(func() { gatherSlack = old })
}

func fixtureFiles(f *testing.F, glob string) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures %s: %v", glob, err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzPickle feeds data.pkl streams (those of the fixtures, and the
// malformed ones of the tests) to the restricted VM and the flattener.
func FuzzPickle(f *testing.F) {
	smallGatherSlack(f)
	for _, b := range fixtureFiles(f, "*.pt") {
		if zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil {
			for _, zf := range zr.File {
				if filepath.Base(zf.Name) == "data.pkl" {
					rc, _ := zf.Open()
					pkl, _ := io.ReadAll(rc)
					rc.Close()
					f.Add(pkl)
				}
			}
		}
	}
	for _, s := range []string{"K\x01K\x02(\x86t.", "}(K\x01K\x02s.", "\x80\x02K\x01."} {
		f.Add([]byte(s))
	}
	f.Add(viewPickle(1, []int64{1 << 25}, []int64{0}))
	f.Add(viewPickle(4, []int64{2, 2}, []int64{1, 2}))
	f.Add(sharedPickle(6))
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		n := allocatedBy(func() { err = runPickle(data) })
		if n > fuzzAllocLimit(len(data)) {
			t.Fatalf("%d-byte pickle allocated %d bytes (err %v)", len(data), n, err)
		}
	})
}

// FuzzTorchFile feeds whole files (zip archives and legacy streams) to the
// torch.save / TorchScript reader.
func FuzzTorchFile(f *testing.F) {
	smallGatherSlack(f)
	for _, b := range fixtureFiles(f, "*.pt") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		n := allocatedBy(func() {
			var tf *TorchFile
			if tf, err = parseTorch("fuzz.pt", data, false); err == nil {
				checkTensors(t, tf)
			}
		})
		if n > fuzzAllocLimit(len(data)) {
			t.Fatalf("%d-byte file allocated %d bytes (err %v)", len(data), n, err)
		}
	})
}

// checkTensors asserts what every loaded tensor promises its users: data
// exactly as long as dtype × shape.
func checkTensors(t *testing.T, src Lookup) {
	t.Helper()
	for _, name := range src.Names() {
		rt, err := src.Tensor(name)
		if err != nil {
			t.Fatalf("listed tensor %q: %v", name, err)
		}
		want, err := checkedByteLen(rt.Shape, rt.Dtype.Size())
		if err != nil || want != int64(len(rt.Data)) {
			t.Fatalf("tensor %q: %s%v with %d bytes (%v)", name, rt.Dtype, rt.Shape, len(rt.Data), err)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	for _, b := range fixtureFiles(f, "*.safetensors") {
		f.Add(b)
	}
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		n := allocatedBy(func() {
			var sf *SafetensorsFile
			if sf, err = ParseSafetensors("fuzz", data); err == nil {
				checkTensors(t, sf)
			}
		})
		if n > fuzzAllocLimit(len(data)) {
			t.Fatalf("%d-byte file allocated %d bytes (err %v)", len(data), n, err)
		}
	})
}

func FuzzNpy(f *testing.F) {
	for _, b := range fixtureFiles(f, "*.npy") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Both with the size known (files) and unknown (streams).
		for _, size := range []int64{int64(len(data)), -1} {
			var rt RawTensor
			var err error
			n := allocatedBy(func() { rt, err = DecodeNpy(bytes.NewReader(data), size) })
			if n > fuzzAllocLimit(len(data)) {
				t.Fatalf("size %d: %d-byte file allocated %d bytes (err %v)", size, len(data), n, err)
			}
			if err != nil {
				continue
			}
			want, cerr := checkedByteLen(rt.Shape, rt.Dtype.Size())
			if cerr != nil || want != int64(len(rt.Data)) {
				t.Fatalf("size %d: %s%v with %d bytes", size, rt.Dtype, rt.Shape, len(rt.Data))
			}
			// What we read, we write back identically (header aside).
			var buf bytes.Buffer
			if err := EncodeNpy(&buf, rt); err != nil {
				t.Fatalf("re-encoding %s%v: %v", rt.Dtype, rt.Shape, err)
			}
			back, err := DecodeNpy(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil || !bytes.Equal(back.Data, rt.Data) || len(back.Shape) != len(rt.Shape) {
				t.Fatalf("round trip of %s%v: %v", rt.Dtype, rt.Shape, err)
			}
		}
	})
}
