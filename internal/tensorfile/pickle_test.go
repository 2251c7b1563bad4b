package tensorfile

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func checkTorchFixture(t *testing.T, file string, tf *TorchFile, fx fixture, exactNames bool) {
	t.Helper()
	names := tf.Names()
	if exactNames && !reflect.DeepEqual(names, fx.Order) {
		t.Errorf("%s: names %v, want %v", file, names, fx.Order)
	}
	for _, name := range fx.Order {
		got, err := tf.Tensor(name)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		assertTensor(t, file+":"+name, got, fx.Tensors[name])
	}
}

func TestTorchReadsZipAndLegacyStateDicts(t *testing.T) {
	fx := loadFixtures(t)
	for _, file := range []string{"sd_zip.pt", "sd_legacy.pt"} {
		tf, err := OpenTorch(filepath.Join("testdata", file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if tf.IsScript() {
			t.Errorf("%s reported as TorchScript", file)
		}
		checkTorchFixture(t, file, tf, fx[file], true)
		// Views of one storage: the base is a zero-copy view into the map,
		// the transpose had to be gathered into a copy.
		base, _ := tf.Tensor("base")
		rows, _ := tf.Tensor("base_rows")
		if &base.Data[16] != &rows.Data[0] {
			t.Errorf("%s: contiguous views of a shared storage should alias", file)
		}
		if err := tf.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestTorchFlattensNestedCheckpoint(t *testing.T) {
	fx := loadFixtures(t)["nested.pt"]
	tf, err := OpenTorch(filepath.Join("testdata", "nested.pt"))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	checkTorchFixture(t, "nested.pt", tf, fx, true)
	vals := tf.Values()
	want := map[string]any{"epoch": int64(3), "lr": 0.5, "name": "mlp", "flag": true}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("value %s = %#v, want %#v", k, vals[k], v)
		}
	}
}

func TestTorchScriptModuleTree(t *testing.T) {
	fx := loadFixtures(t)["script.pt"]
	path := filepath.Join("testdata", "script.pt")
	tf, err := OpenTorchScript(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	if !tf.IsScript() {
		t.Error("not reported as TorchScript")
	}
	// Every state_dict() entry, fp16 and fp32 alike, by its dotted name.
	checkTorchFixture(t, "script.pt", tf, fx, false)
	have := map[string]bool{}
	for _, n := range tf.Names() {
		have[n] = true
	}
	for _, n := range tf.Names() {
		if _, ok := fx.Tensors[n]; !ok {
			t.Errorf("extra tensor %q not in state_dict()", n)
		}
	}
	conv, _ := tf.Tensor("visual.conv1.weight")
	if conv.Dtype != F16 {
		t.Errorf("conv1 dtype %s, want F16", conv.Dtype)
	}
	if v := tf.Values()["visual.training"]; v != false {
		t.Errorf("visual.training = %v", v)
	}
	// OpenTorch detects TorchScript too; OpenTorchScript refuses plain saves.
	tf2, err := OpenTorch(path)
	if err != nil || !tf2.IsScript() || len(tf2.Names()) != len(tf.Names()) {
		t.Errorf("OpenTorch on TorchScript: %v", err)
	}
	tf2.Close()
	if _, err := OpenTorchScript(filepath.Join("testdata", "sd_zip.pt")); err == nil || !strings.Contains(err.Error(), "not TorchScript") {
		t.Errorf("OpenTorchScript(sd_zip.pt): %v", err)
	}
	if _, err := OpenTorchScript(filepath.Join("testdata", "sd_legacy.pt")); err == nil {
		t.Error("OpenTorchScript accepted a legacy file")
	}
}

func TestTorchRefusesUnknownGlobals(t *testing.T) {
	path := filepath.Join("testdata", "module.pt")
	_, err := OpenTorch(path)
	if err == nil || !strings.Contains(err.Error(), "torch.nn.modules.linear.Linear") || !strings.Contains(err.Error(), path) {
		t.Fatalf("pickled module: %v", err)
	}
	// A classic exploit: GLOBAL os.system; REDUCE ('echo pwned',).
	evil := []byte("\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwnedx85R.")
	evil = bytes.Replace(evil, []byte("x85"), []byte{0x85}, 1)
	p := writeZip(t, map[string][]byte{"archive/data.pkl": evil})
	if _, err := OpenTorch(p); err == nil || !strings.Contains(err.Error(), "refusing to load global os.system") {
		t.Fatalf("os.system: %v", err)
	}
	// __torch__ classes are placeholders only inside TorchScript archives.
	obj := []byte("\x80\x02c__torch__\nM\n)\x81}b.")
	p = writeZip(t, map[string][]byte{"archive/data.pkl": obj})
	if _, err := OpenTorch(p); err == nil || !strings.Contains(err.Error(), "__torch__.M") {
		t.Fatalf("__torch__ outside TorchScript: %v", err)
	}
}

func writeZip(t *testing.T, files map[string][]byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "x.pt")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTorchRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	zipped := mustRead(t, filepath.Join("testdata", "sd_zip.pt"))
	legacy := mustRead(t, filepath.Join("testdata", "sd_legacy.pt"))
	// A storage too small for the tensor that views it.
	var p pickleWriter
	p.op(0x80, 2)
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.op('(', '(')
	p.str("storage")
	p.global("torch", "FloatStorage")
	p.str("0")
	p.str("cpu")
	p.int(4)
	p.op('t', 'Q')
	p.int(2)
	p.intTuple([]int64{3})
	p.intTuple([]int64{1})
	p.op(0x89, ')', 't', 'R', '.')
	short := writeZip(t, map[string][]byte{"archive/data.pkl": p.buf.Bytes(), "archive/data/0": make([]byte, 16)})
	missing := writeZip(t, map[string][]byte{"archive/data.pkl": p.buf.Bytes()})
	undersized := writeZip(t, map[string][]byte{"archive/data.pkl": p.buf.Bytes(), "archive/data/0": make([]byte, 8)})
	cases := []struct {
		name, want string
		img        []byte
		path       string
	}{
		{"zip truncated", "zip", zipped[:len(zipped)-100], ""},
		{"zip cut early", "zip", zipped[:200], ""},
		{"legacy truncated", "truncated", legacy[:len(legacy)-10], ""},
		{"legacy cut in pickle", "truncated", legacy[:300], ""},
		{"garbage", "neither a zip archive nor a pickle", []byte("hello world"), ""},
		{"tiny", "too short", []byte{1}, ""},
		{"out of range view", "reaches element 4 of storage 0 with 4 elements", nil, short},
		{"missing storage", "no archive/data/0", nil, missing},
		{"undersized storage", "8 bytes, need 16", nil, undersized},
		{"no data.pkl", "no archive/data.pkl", nil, writeZip(t, map[string][]byte{"archive/version": []byte("3\n")})},
		{"bad opcode", "unknown opcode 0xff", nil, writeZip(t, map[string][]byte{"archive/data.pkl": {0x80, 2, 0xff}})},
		{"no stop", "no STOP", nil, writeZip(t, map[string][]byte{"archive/data.pkl": {0x80, 2, 'N'}})},
		{"underflow", "stack underflow", nil, writeZip(t, map[string][]byte{"archive/data.pkl": {0x80, 2, 'R'}})},
		{"bad memo", "memo key 7", nil, writeZip(t, map[string][]byte{"archive/data.pkl": {0x80, 2, 'h', 7, '.'}})},
	}
	for i, c := range cases {
		path := c.path
		if path == "" {
			path = filepath.Join(dir, "case"+string(rune('a'+i))+".pt")
			if err := os.WriteFile(path, c.img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tf, err := OpenTorch(path)
		if err == nil {
			tf.Close()
			t.Errorf("%s: opened without error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q should mention %q and the path", c.name, err, c.want)
		}
	}
}
