package download

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clipcap/clipcap/data/download/fakeserver"
)

// files serves fixed bodies by path and counts requests.
type files struct {
	mu   sync.Mutex
	body map[string][]byte
	hits map[string]int
}

func (f *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits[r.URL.Path]++
	b, ok := f.body[r.URL.Path]
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".png") {
		w.Header().Set("Content-Type", "image/png")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func zipBytes(t *testing.T, entries ...entry) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "z.zip")
	writeZip(t, p, entries...)
	b, _ := os.ReadFile(p)
	return b
}

// cocoFixture serves small stand-ins for COCO's archives and the Drive
// caption file, with the registry's sizes replaced by theirs.
func cocoFixture(t *testing.T, val []byte) (*files, *fakeserver.Drive) {
	t.Helper()
	fs := &files{body: map[string][]byte{
		"/zips/val2014.zip":   val,
		"/zips/train2014.zip": zipBytes(t, entry{"train2014/COCO_train2014_000000000001.jpg", "t1"}),
	}, hits: map[string]int{}}
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	drive := &fakeserver.Drive{Files: map[string][]byte{"1D3EzUK1d1lNhD2hAvRiKPThidiVbP2K_": []byte(`[{"image_id": 1, "caption": "a cat."}]`)}, Flow: fakeserver.FlowForm}
	dsrv := httptest.NewServer(drive)
	t.Cleanup(dsrv.Close)
	t.Setenv("CLIPCAP_COCO_ENDPOINT", srv.URL)
	t.Setenv("CLIPCAP_DRIVE_ENDPOINT", dsrv.URL)
	orig := datasetSizes
	datasetSizes = map[string]int64{"val2014.zip": int64(len(val)), "train2014.zip": int64(len(fs.body["/zips/train2014.zip"]))}
	t.Cleanup(func() { datasetSizes = orig })
	return fs, drive
}

func datasetOpts(dir string) DatasetOptions {
	return DatasetOptions{Options: quiet(), Dir: dir}
}

func TestFetchCOCO(t *testing.T) {
	val := zipBytes(t, entry{"val2014/COCO_val2014_000000000002.jpg", "v2"})
	fs, _ := cocoFixture(t, val)
	dir := filepath.Join(t.TempDir(), "coco")
	next, err := FetchDataset(context.Background(), "coco2014", datasetOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"train2014/COCO_train2014_000000000001.jpg", "val2014/COCO_val2014_000000000002.jpg", "annotations/train_caption.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "val2014.zip")); err == nil {
		t.Error("archive kept without --keep-zips")
	}
	want := "clipcap extract --dataset clipcap --input " + dir + "/annotations/train_caption.json --clip ViT-B/32 --out data/coco_vitb32"
	if len(next) == 0 || next[0] != want {
		t.Errorf("next = %q, want first %q", next, want)
	}
	// A rerun finds everything marked complete and fetches nothing.
	if _, err := FetchDataset(context.Background(), "coco2014", datasetOpts(dir)); err != nil {
		t.Fatal(err)
	}
	if fs.hits["/zips/val2014.zip"] != 1 || fs.hits["/zips/train2014.zip"] != 1 {
		t.Errorf("hits %v: the rerun downloaded again", fs.hits)
	}
}

func TestFetchCOCOPublishedSizeIsChecked(t *testing.T) {
	val := zipBytes(t, entry{"val2014/a.jpg", "v"})
	cocoFixture(t, val)
	datasetSizes["val2014.zip"] = cocoValZipSize // the real size: the tiny file is "truncated"
	dir := filepath.Join(t.TempDir(), "coco")
	_, err := FetchDataset(context.Background(), "coco2014", datasetOpts(dir))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(cocoValZipSize)) {
		t.Fatalf("got %v, want a size mismatch against the published size", err)
	}
	if _, err := os.Stat(markerPath(dir, "val2014.zip")); err == nil {
		t.Error("val2014.zip marked complete")
	}
}

func TestFetchCOCOZipSlipMarksNothing(t *testing.T) {
	val := zipBytes(t, entry{"val2014/a.jpg", "v"}, entry{"../../escape.txt", "x"})
	cocoFixture(t, val)
	root := t.TempDir()
	dir := filepath.Join(root, "a", "coco")
	_, err := FetchDataset(context.Background(), "coco2014", datasetOpts(dir))
	if err == nil || !strings.Contains(err.Error(), "zip-slip") {
		t.Fatalf("got %v, want zip-slip", err)
	}
	if _, err := os.Stat(filepath.Join(root, "escape.txt")); err == nil {
		t.Error("the hostile entry was written")
	}
	if _, err := os.Stat(markerPath(dir, "val2014.zip")); err == nil {
		t.Error("val2014.zip marked complete")
	}
	if _, err := os.Stat(filepath.Join(dir, "val2014")); err == nil {
		t.Error("half a dataset in place")
	}
	if _, err := os.Stat(filepath.Join(dir, "val2014.zip")); err == nil {
		t.Error("the hostile archive was kept for the next run")
	}
}

func TestFetchCOCODiskFullMarksNothing(t *testing.T) {
	val := zipBytes(t, entry{"val2014/a.jpg", strings.Repeat("v", 5000)})
	cocoFixture(t, val)
	dir := filepath.Join(t.TempDir(), "coco")
	opt := datasetOpts(dir)
	left := 100
	opt.Unzip.Create = func(p string) (io.WriteCloser, error) {
		f, err := os.Create(p)
		return fullDisk{f: f, left: &left}, err
	}
	_, err := FetchDataset(context.Background(), "coco2014", opt)
	if err == nil || !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("got %v, want no space", err)
	}
	if _, err := os.Stat(markerPath(dir, "val2014.zip")); err == nil {
		t.Error("marked complete")
	}
	if _, err := os.Stat(filepath.Join(dir, "val2014.zip")); err != nil {
		t.Error("a sound archive was removed because the disk was full; the rerun would download it again")
	}
	// With space again, the rerun unpacks the archive it kept.
	if _, err := FetchDataset(context.Background(), "coco2014", datasetOpts(dir)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "val2014", "a.jpg")); len(b) != 5000 {
		t.Errorf("after the rerun a.jpg has %d bytes", len(b))
	}
}

func TestFetchNocapsVal(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n fake")
	fs := &files{body: map[string][]byte{"/img/1.png": png, "/img/2.png": png}, hits: map[string]int{}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	ann := fmt.Sprintf(`{"images": [
	 {"id": 0, "file_name": "0001.jpg", "domain": "in-domain", "coco_url": "%[1]s/img/1.png"},
	 {"id": 1, "file_name": "0002.jpg", "domain": "out-domain", "coco_url": "%[1]s/img/2.png"}],
	"annotations": [{"image_id": 0, "caption": "a dog."}, {"image_id": 1, "caption": "a cat."}]}`, srv.URL)
	fs.body["/nocaps_val_4500_captions.json"] = []byte(ann)
	t.Setenv("CLIPCAP_NOCAPS_ENDPOINT", srv.URL)
	dir := filepath.Join(t.TempDir(), "nocaps")
	next, err := FetchDataset(context.Background(), "nocaps-val", datasetOpts(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"val/0001.jpg", "val/0002.jpg"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Equal(b, png) {
			t.Errorf("%s: %v", f, err)
		}
	}
	want := "clipcap extract --dataset nocaps --input " + dir + "/nocaps_val_4500_captions.json --images " + dir + "/val"
	if len(next) != 1 || !strings.HasPrefix(next[0], want) {
		t.Errorf("next = %q, want %q...", next, want)
	}
}

func TestFetchConceptualRefusedGivesInstructions(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "denied", http.StatusForbidden)
	}))
	defer srv.Close()
	t.Setenv("CLIPCAP_GCC_ENDPOINT", srv.URL)
	dir := filepath.Join(t.TempDir(), "cc")
	_, err := FetchDataset(context.Background(), "conceptual", datasetOpts(dir))
	if err == nil || !strings.Contains(err.Error(), "ai.google.com/research/ConceptualCaptions/download") ||
		!strings.Contains(err.Error(), "clipcap download conceptual --data "+dir) {
		t.Fatalf("got %v, want the manual instructions", err)
	}
	// Files put there by hand are taken as they are.
	for _, f := range []string{"Validation_GCC-1.1.0-Validation.tsv", "Train_GCC-training.tsv"} {
		os.WriteFile(filepath.Join(dir, f), []byte("a cat.\thttp://x/1.jpg\n"), 0o644)
	}
	next, err := FetchDataset(context.Background(), "conceptual", datasetOpts(dir))
	if err != nil || len(next) != 1 || !strings.Contains(next[0], "--dataset conceptual --input "+dir+"/Train_GCC-training.tsv") {
		t.Fatalf("next %q, err %v", next, err)
	}
}

func TestCatalogHasSizesAndLicences(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Catalog() {
		seen[e.Name] = true
		if e.Size == "" || e.Licence == "" {
			t.Errorf("%s: size %q licence %q", e.Name, e.Size, e.Licence)
		}
	}
	for _, n := range []string{"clipcap-coco", "clipcap-conceptual", "clipcap-coco-transformer", "coco2014", "nocaps-val", "conceptual", "gpt2", "ViT-B/32", "RN50x4"} {
		if !seen[n] {
			t.Errorf("--list lacks %s", n)
		}
	}
}

// --list: a header and one aligned row per catalog entry.
func TestWriteCatalog(t *testing.T) {
	var b strings.Builder
	if err := WriteCatalog(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(Catalog())+1 || !strings.HasPrefix(lines[0], "NAME  ") {
		t.Fatalf("%d lines for %d entries:\n%s", len(lines), len(Catalog()), b.String())
	}
	col := strings.Index(lines[0], "KIND")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "model") && !strings.HasPrefix(l[col:], "dataset") && !strings.HasPrefix(l[col:], "clip") && !strings.HasPrefix(l[col:], "gpt2") {
			t.Errorf("row not aligned under KIND: %q", l)
		}
	}
}
