package datasets

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const karpathy = `{"images": [
 {"filepath": "val2014", "filename": "COCO_val2014_000000000042.jpg", "split": "test", "cocoid": 42,
  "sentences": [{"raw": "A dog. "}, {"raw": "Two dogs"}]},
 {"filepath": "train2014", "filename": "COCO_train2014_000000000007.jpg", "split": "restval", "cocoid": 7,
  "sentences": [{"raw": "A cat"}]},
 {"filepath": "train2014", "filename": "COCO_train2014_000000000009.jpg", "split": "train", "cocoid": 9,
  "sentences": []}
], "dataset": "coco"}`

func TestKarpathy(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "dataset_coco.json", karpathy)
	items, err := Read("coco", p, Options{Images: "/coco", RestvalAsTrain: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ImageID: "42", Path: "/coco/val2014/COCO_val2014_000000000042.jpg", Captions: []string{"A dog. ", "Two dogs"}, Split: "test"},
		{ImageID: "7", Path: "/coco/train2014/COCO_train2014_000000000007.jpg", Captions: []string{"A cat"}, Split: "train"},
		{ImageID: "9", Path: "/coco/train2014/COCO_train2014_000000000009.jpg", Split: "train"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("got %+v\nwant %+v", items, want)
	}
	items, _ = Read("coco", p, Options{Split: "train"})
	if len(items) != 1 || items[0].ImageID != "9" {
		t.Fatalf("train without restval: %+v", items)
	}
	if items[0].Path != filepath.Join(dir, "train2014/COCO_train2014_000000000009.jpg") {
		t.Fatalf("default images root: %s", items[0].Path)
	}
}

func TestClipCapTrainCaption(t *testing.T) {
	dir := t.TempDir()
	// parse_coco.py looks in train2014 first and falls back to val2014.
	write(t, dir, "train2014/COCO_train2014_000000000005.jpg", "x")
	p := write(t, dir, "annotations/train_caption.json",
		`[{"image_id": 5, "caption": "a", "id": 1}, {"image_id": "12", "caption": "b", "id": 2}, {"image_id": 5, "caption": "c", "id": 3}]`)
	items, err := Read("coco", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ImageID: "5", Path: filepath.Join(dir, "train2014/COCO_train2014_000000000005.jpg"), Captions: []string{"a", "c"}, Split: "train"},
		{ImageID: "12", Path: filepath.Join(dir, "val2014/COCO_val2014_000000000012.jpg"), Captions: []string{"b"}, Split: "train"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("got %+v\nwant %+v", items, want)
	}
}

func TestCOCOFormatAndNocaps(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "captions.json", `{"images": [{"id": 3, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}],
		"annotations": [{"image_id": 1, "caption": "one"}, {"image_id": 3, "caption": "three"}, {"image_id": 1, "caption": "uno"}]}`)
	items, err := Read("coco-format", p, Options{Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ImageID: "3", Path: filepath.Join(dir, "a.jpg"), Captions: []string{"three"}, Split: "val"},
		{ImageID: "1", Path: filepath.Join(dir, "b.jpg"), Captions: []string{"one", "uno"}, Split: "val"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("got %+v\nwant %+v", items, want)
	}
	p = write(t, dir, "nocaps_test.json", `{"images": [{"id": 0, "file_name": "x.jpg", "domain": "out-domain", "coco_url": "https://e/x.jpg"}]}`)
	items, err = Read("nocaps", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Domain != "out-domain" || items[0].Split != "test" || len(items[0].Captions) != 0 {
		t.Fatalf("nocaps test: %+v", items)
	}
}

func TestConceptualFolderJSONL(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "cc.tsv", "a dog\thttp://h/1.jpg\nthe sky\thttps://h/2.png\n")
	items, err := Read("conceptual", p, Options{Images: "/img", NoAddPeriod: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[1].ImageID != "1" || items[1].URL != "https://h/2.png" || items[1].Path != "/img/0000/000000001" || items[0].Captions[0] != "a dog" {
		t.Fatalf("conceptual: %+v", items)
	}
	root := filepath.Join(dir, "imgs")
	write(t, root, "b/z.png", "")
	write(t, root, "a.JPG", "")
	write(t, root, "a.txt", "first\n\n second \n")
	write(t, root, ".hidden/c.png", "")
	write(t, root, "notes.md", "")
	items, err = Read("folder", root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ImageID: "a.JPG", Path: filepath.Join(root, "a.JPG"), Captions: []string{"first", "second"}},
		{ImageID: "b/z.png", Path: filepath.Join(root, "b/z.png")},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("folder: %+v", items)
	}
	p = write(t, dir, "d.jsonl", `{"image": "x.png", "caption": "c1"}
{"image": "https://h/y.jpg", "captions": ["c2", "c3"], "split": "val"}

{"image": "x.png", "caption": "c4"}
`)
	items, err = Read("jsonl", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want = []Item{
		{ImageID: "x.png", Path: filepath.Join(dir, "x.png"), Captions: []string{"c1", "c4"}},
		{ImageID: "https://h/y.jpg", URL: "https://h/y.jpg", Path: ImageFile(dir, 1), Captions: []string{"c2", "c3"}, Split: "val"},
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("jsonl: %+v", items)
	}
	// Lines without a split take --split's; lines with another one are dropped.
	write(t, dir, "d.jsonl", `{"image": "x.png", "caption": "c1", "split": "train"}
{"image": "y.png", "caption": "c2"}`)
	if items, _ := Read("jsonl", p, Options{Split: "val"}); len(items) != 1 || items[0].ImageID != "y.png" || items[0].Split != "val" {
		t.Fatalf("jsonl split filter: %+v", items)
	}
}

// Malformed inputs fail with the file and the place of the problem.
func TestMalformed(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ format, name, content, want string }{
		{"coco", "k1.json", "{\"images\": [\n {\"filename\": \"a.jpg\", \"split\": \"train\",}\n]}", "k1.json:2:"},
		{"coco", "k2.json", `{"images": [{"filename": "a.jpg", "split": "dev"}]}`, `images[0] (a.jpg): split "dev"`},
		{"coco", "k3.json", `{"images": [{"filename": "a.jpg", "split": "train", "sentences": [{"tokens": []}]}]}`, `images[0].sentences[0]: missing "raw"`},
		{"coco", "k4.json", "{\"images\": [{\"filename\": 5}]}", `k4.json:1:`},
		{"coco", "k5.json", `{"annotations": []}`, `no "images"`},
		{"clipcap", "c1.json", `[{"image_id": "abc", "caption": "x"}]`, "element 0: image_id abc"},
		{"clipcap", "c2.json", `[{"image_id": 1}]`, `element 0: missing "caption"`},
		{"coco-format", "f1.json", `{"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 2, "caption": "x"}]}`, "annotations[0]: image_id 2 is not"},
		{"coco-format", "f2.json", `{"images": [{"id": 1, "file_name": "a"}, {"id": 1, "file_name": "b"}], "annotations": []}`, "images[1]: image id 1 appears twice"},
		{"coco-format", "f3.json", `{"images": [{"id": 1, "file_name": "a"}]}`, `no "annotations"`},
		{"nocaps", "n1.json", `{"images": [{"id": 1, "file_name": "a", "domain": "far"}]}`, `domain "far"`},
		{"conceptual", "t1.tsv", "ok\thttp://a\nno tab here\n", "t1.tsv:2: 1 tab-separated"},
		{"conceptual", "t2.tsv", "ok\tftp://a\n", `t2.tsv:1: "ftp://a" is not`},
		{"conceptual", "t3.tsv", "ok\thttp://a\n\nok\thttp://b\n", "t3.tsv:2: empty line"},
		{"jsonl", "j1.jsonl", "{\"image\": \"a\"}\n{\"caption\": \"x\"}\n", `j1.jsonl:2: missing "image"`},
		{"jsonl", "j2.jsonl", "{\"image\": \"a\"}\n{bad\n", "j2.jsonl:2:"},
		{"jsonl", "j3.jsonl", "{\"image\": \"a\", \"split\": \"train\"}\n{\"image\": \"a\", \"split\": \"val\"}\n", "j3.jsonl:2: image a was given another"},
		{"bogus", "b.json", "{}", "unknown dataset format"},
	}
	for _, c := range cases {
		p := write(t, dir, c.name, c.content)
		_, err := Read(c.format, p, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: error %v, want it to contain %q", c.format, c.name, err, c.want)
		}
	}
	if _, err := Read("folder", filepath.Join(dir, "k1.json"), Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("folder on a file: %v", err)
	}
	if _, err := Read("coco", filepath.Join(dir, "missing.json"), Options{}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}

// Conceptual Captions get parse_conceptual.py's trailing period by default
// (its add_period: strip, append ".", close up a final " ."), and keep
// their text with NoAddPeriod.
func TestConceptualAddPeriod(t *testing.T) {
	p := write(t, t.TempDir(), "cc.tsv", "a dog\thttp://h/0\n  the sky .\thttp://h/1\nalready.\thttp://h/2\nwhat? \thttp://h/3\n")
	for _, tc := range []struct {
		opt  Options
		want []string
	}{
		{Options{}, []string{"a dog.", "the sky.", "already.", "what?."}},
		{Options{NoAddPeriod: true}, []string{"a dog", "  the sky .", "already.", "what? "}},
	} {
		items, err := Read("conceptual", p, tc.opt)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Captions[0])
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("NoAddPeriod=%v: captions %q, want %q", tc.opt.NoAddPeriod, got, tc.want)
		}
	}
	for in, want := range map[string]string{"x": "x.", "x.": "x.", "x .": "x.", "x  .": "x .", " . ": ".", "": ""} {
		if got := AddPeriod(in); got != want {
			t.Errorf("AddPeriod(%q) = %q, want %q", in, got, want)
		}
	}
}
