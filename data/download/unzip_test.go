package download

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type entry struct{ name, body string }

// writeZip writes entries uncompressed (Store), so tests can damage the
// data of one entry at a known place.
func writeZip(t *testing.T, path string, entries ...entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listTree lists every path under dir, relative.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestUnzipMergesIntoDestination(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "val2014.zip")
	writeZip(t, archive, entry{"val2014/", ""}, entry{"val2014/a.jpg", "AAA"}, entry{"annotations/x.json", "{}"})
	dest := filepath.Join(tmp, "coco")
	os.MkdirAll(filepath.Join(dest, "annotations"), 0o755)
	os.WriteFile(filepath.Join(dest, "annotations", "train_caption.json"), []byte("mine"), 0o644)
	if err := Unzip(context.Background(), archive, dest, UnzipOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"val2014/a.jpg": "AAA", "annotations/x.json": "{}", "annotations/train_caption.json": "mine"} {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if got := listTree(t, dest); len(got) != 5 {
		t.Errorf("destination holds %v; the staging directory must be gone", got)
	}
}

func TestUnzipRefusesZipSlip(t *testing.T) {
	for _, bad := range []string{"../evil.txt", "/etc/evil.txt", "ok/../../evil.txt", `..\evil.txt`} {
		t.Run(bad, func(t *testing.T) {
			tmp := t.TempDir()
			archive := filepath.Join(tmp, "x.zip")
			writeZip(t, archive, entry{"fine.txt", "fine"}, entry{bad, "gotcha"})
			dest := filepath.Join(tmp, "out", "deeper")
			err := Unzip(context.Background(), archive, dest, UnzipOptions{})
			if err == nil || !strings.Contains(err.Error(), "zip-slip") || !strings.Contains(err.Error(), "x.zip") {
				t.Fatalf("got %v, want a zip-slip refusal naming the archive", err)
			}
			if got := listTree(t, filepath.Join(tmp, "out")); len(got) != 0 {
				t.Errorf("wrote %v despite refusing", got)
			}
		})
	}
}

func TestUnzipTruncatedArchive(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "train2014.zip")
	writeZip(t, archive, entry{"train2014/a.jpg", strings.Repeat("x", 5000)})
	data, _ := os.ReadFile(archive)
	os.WriteFile(archive, data[:len(data)/2], 0o644)
	dest := filepath.Join(tmp, "coco")
	err := Unzip(context.Background(), archive, dest, UnzipOptions{})
	if err == nil || !strings.Contains(err.Error(), "truncated or not a zip archive") || !strings.Contains(err.Error(), "train2014.zip") {
		t.Fatalf("got %v, want a truncated-archive error naming the file", err)
	}
	if got := listTree(t, tmp); len(got) != 1 {
		t.Errorf("left %v", got)
	}
}

func TestUnzipDamagedEntryLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "x.zip")
	body := strings.Repeat("payload-", 200)
	writeZip(t, archive, entry{"d/first.txt", "ok"}, entry{"d/second.txt", body})
	data, _ := os.ReadFile(archive)
	i := bytes.LastIndex(data, []byte("payload-"))
	data[i] = 'P' // same size, wrong CRC
	os.WriteFile(archive, data, 0o644)
	dest := filepath.Join(tmp, "out")
	err := Unzip(context.Background(), archive, dest, UnzipOptions{})
	if !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("got %v, want the CRC failure", err)
	}
	if got := listTree(t, dest); len(got) != 0 {
		t.Errorf("a failed unpack left %v (the first entry must not be moved into place)", got)
	}
}

// fullDisk accepts limit bytes in all, then fails as a full disk does.
type fullDisk struct {
	f    *os.File
	left *int
}

func (w fullDisk) Write(b []byte) (int, error) {
	if len(b) > *w.left {
		n, _ := w.f.Write(b[:*w.left])
		*w.left = 0
		return n, &os.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
	}
	*w.left -= len(b)
	return w.f.Write(b)
}

func (w fullDisk) Close() error { return w.f.Close() }

func TestUnzipDiskFull(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "x.zip")
	writeZip(t, archive, entry{"d/a.bin", strings.Repeat("a", 3000)}, entry{"d/b.bin", strings.Repeat("b", 3000)})
	dest := filepath.Join(tmp, "out")
	left := 4000
	opt := UnzipOptions{Create: func(p string) (io.WriteCloser, error) {
		f, err := os.Create(p)
		return fullDisk{f: f, left: &left}, err
	}}
	err := Unzip(context.Background(), archive, dest, opt)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "free some space") {
		t.Fatalf("got %v, want a no-space error that says what to do", err)
	}
	if got := listTree(t, dest); len(got) != 0 {
		t.Errorf("left %v after the disk filled up", got)
	}
}

func TestUnzipChecksFreeSpaceFirst(t *testing.T) {
	tmp := t.TempDir()
	archive := filepath.Join(tmp, "x.zip")
	writeZip(t, archive, entry{"a.bin", strings.Repeat("a", 3000)})
	created := 0
	opt := UnzipOptions{
		FreeBytes: func(string) (uint64, error) { return 100, nil },
		Create:    func(p string) (io.WriteCloser, error) { created++; return os.Create(p) },
	}
	err := Unzip(context.Background(), archive, filepath.Join(tmp, "out"), opt)
	if err == nil || !strings.Contains(err.Error(), "has only 100 B free") || created != 0 {
		t.Fatalf("got %v after creating %d files, want an up-front space error", err, created)
	}
}
