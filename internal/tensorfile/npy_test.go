package tensorfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNpyReadsNumpyFiles(t *testing.T) {
	fx := loadFixtures(t)
	for _, name := range []string{"f4.npy", "f2.npy", "f8.npy", "i8.npy", "i4.npy", "u1.npy", "scalar.npy", "empty.npy", "v2.npy"} {
		got, err := ReadNpy(filepath.Join("testdata", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		assertTensor(t, name, got, fx[name].fixtureTensor)
	}
}

// np.save writes version 1.0 headers padded to 64 bytes; ours must be
// byte-identical so files interchange without surprises.
func TestNpyWriterMatchesNumpyBytes(t *testing.T) {
	fx := loadFixtures(t)
	for _, name := range []string{"f4.npy", "f2.npy", "f8.npy", "i8.npy", "i4.npy", "u1.npy", "scalar.npy", "empty.npy"} {
		var buf bytes.Buffer
		if err := EncodeNpy(&buf, fx[name].raw(t)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := mustRead(t, filepath.Join("testdata", name)); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: got %q, numpy wrote %q", name, buf.Bytes(), want)
		}
	}
	out := filepath.Join(t.TempDir(), "x.npy")
	if err := WriteNpy(out, fx["f4.npy"].raw(t)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNpy(out)
	if err != nil {
		t.Fatal(err)
	}
	assertTensor(t, "written", got, fx["f4.npy"].fixtureTensor)
}

func TestNpyRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	f4 := mustRead(t, filepath.Join("testdata", "f4.npy"))
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hdr := func(dict string) []byte {
		b := []byte("\x93NUMPY\x01\x00")
		b = append(b, byte(len(dict)), 0)
		return append(b, dict...)
	}
	cases := map[string]struct {
		path, want string
	}{
		"fortran":    {filepath.Join("testdata", "fortran.npy"), "fortran_order"},
		"bigendian":  {filepath.Join("testdata", "big_endian.npy"), `unsupported dtype ">f4"`},
		"truncated":  {write("trunc.npy", f4[:len(f4)-5]), "truncated"},
		"short":      {write("short.npy", f4[:20]), "header"},
		"magic":      {write("magic.npy", []byte("PK\x03\x04 not npy at all")), "bad magic"},
		"version":    {write("ver.npy", []byte("\x93NUMPY\x09\x00\x00\x00")), "format version 9.0"},
		"dict":       {write("dict.npy", hdr("{'descr': '<f4', 'shape': (2,), }\n")), "missing one of"},
		"shape":      {write("shape.npy", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n")), "bad dimension"},
		"key":        {write("key.npy", hdr("{'descr': '<f4', 'evil': 1, 'fortran_order': False, 'shape': (), }\n")), `unexpected key "evil"`},
		"objects":    {write("obj.npy", hdr("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n")), "unsupported dtype"},
		"no content": {write("empty.npy", nil), "magic"},
	}
	for name, c := range cases {
		_, err := ReadNpy(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %v, want mention of %q and the path", name, err, c.want)
		}
	}
	if err := EncodeNpy(&bytes.Buffer{}, RawTensor{Dtype: BF16, Shape: []int64{1}, Data: []byte{0, 0}}); err == nil {
		t.Error("bf16 .npy accepted")
	}
	if err := EncodeNpy(&bytes.Buffer{}, RawTensor{Dtype: F32, Shape: []int64{2}, Data: []byte{0}}); err == nil {
		t.Error("short data accepted")
	}
}
