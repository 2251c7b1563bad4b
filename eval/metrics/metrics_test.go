package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, body, want string
		ann              bool
	}{
		{"malformed", `[{"image_id": 1, "caption": "a"`, "not a COCO results file", false},
		{"not array", `{"image_id": 1}`, "not a COCO results file", false},
		{"no id", `[{"caption": "a"}]`, "results[0] has no image_id", false},
		{"no caption", `[{"image_id": 7}]`, "(image_id 7) has no caption", false},
		{"float id", `[{"image_id": 1.5, "caption": "a"}]`, "neither an integer nor a string", false},
		{"bool id", `[{"image_id": true, "caption": "a"}]`, "neither an integer nor a string", false},
		{"bad utf8", "[{\"image_id\": 1, \"caption\": \"caf\xe9\"}]", "invalid UTF-8 at byte 32", false},
		{"no annotations", `{"images": []}`, `no "annotations" array`, true},
		{"image without id", `{"annotations": [], "images": [{"file_name": "x"}]}`, "images[0] has no id", true},
	}
	for _, c := range cases {
		p := writeFile(t, "f.json", c.body)
		var err error
		if c.ann {
			_, err = LoadAnnotations(p)
		} else {
			_, err = LoadResults(p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want it to name %s and say %q", c.name, err, p, c.want)
		}
	}
	if _, err := LoadResults(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestImageIDForms(t *testing.T) {
	ann := writeFile(t, "a.json", `{"images": [{"id": 2}, {"id": "x"}, {"id": 1}],
	  "annotations": [{"image_id": 1, "caption": "a dog"}, {"image_id": "x", "caption": "a cat"},
	                  {"image_id": 2, "caption": "a bird"}, {"image_id": 1, "caption": "the dog"}]}`)
	res := writeFile(t, "r.json", `[{"image_id": "1", "caption": "a dog"}, {"image_id": "x", "caption": "a cat"}, {"image_id": 2, "caption": "a bird"}]`)
	a, err := LoadAnnotations(ann)
	if err != nil {
		t.Fatal(err)
	}
	r, err := LoadResults(res)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Score(r, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Evaluation follows the images list; ids keep their annotation form.
	b, _ := json.Marshal([]ImageID{rep.Images[0].ImageID, rep.Images[1].ImageID, rep.Images[2].ImageID})
	if string(b) != `[2,"x",1]` {
		t.Errorf("image order/forms %s, want [2,\"x\",1]", b)
	}
	for _, im := range rep.Images {
		if im.Scores[RougeL] != 1 {
			t.Errorf("image %v: exact match has ROUGE-L %g", im.ImageID, im.Scores[RougeL])
		}
	}
}

func TestMismatchesReportedByID(t *testing.T) {
	a := &Annotations{Captions: []Caption{
		{IntID(1), "a"}, {IntID(2), "b"}, {IntID(3), "c"},
	}}
	res := []Caption{{IntID(1), "a"}, {IntID(1), "again"}, {IntID(9), "who"}, {StringID("zz"), "?"}}
	_, err := Score(res, a, Options{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"have no result: 2, 3", "more than one result: 1", "without reference captions: 9, zz"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Score(nil, &Annotations{}, Options{}); err == nil {
		t.Error("no annotations: no error")
	}
	if _, err := ScoreTokenized([]ImageID{IntID(1)}, []string{"a"}, [][]string{{}}, Options{}); err == nil {
		t.Error("image without references: no error")
	}
}

func TestEmptyCandidatesScoreZero(t *testing.T) {
	a := &Annotations{Captions: []Caption{{IntID(1), "a dog runs on the grass"}, {IntID(2), "two cats"}}}
	res := []Caption{{IntID(1), "  "}, {IntID(2), ". , ! ..."}}
	rep, err := Score(res, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range rep.Images {
		for k, v := range im.Scores {
			if v != 0 {
				t.Errorf("image %v: %s = %g for an empty caption", im.ImageID, k, v)
			}
		}
	}
}

// TestSmallByHand checks one image against values worked out by hand.
func TestSmallByHand(t *testing.T) {
	rep, err := ScoreTokenized([]ImageID{IntID(1)}, []string{"a b c d"}, [][]string{{"a b c d e f"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Images[0].Scores
	bp := math.Exp(1 - 6.0/4) // brevity penalty: 4 words against 6
	if math.Abs(s[Bleu4]-bp) > 1e-9 {
		t.Errorf("BLEU-4 %g, want %g", s[Bleu4], bp)
	}
	// ROUGE-L: P = 1, R = 4/6.
	p, r := 1.0, 4.0/6
	if want := (1 + 1.44) * p * r / (r + 1.44*p); math.Abs(s[RougeL]-want) > 1e-12 {
		t.Errorf("ROUGE-L %g, want %g", s[RougeL], want)
	}
	// One image: every n-gram has idf log(1) - log(1) = 0, so CIDEr-D is 0.
	if s[CIDEr] != 0 {
		t.Errorf("CIDEr %g on a single image, want 0", s[CIDEr])
	}
}

func TestTokenizeBasics(t *testing.T) {
	got := Tokenize([]string{
		`A man's "big" dog (on the left) can't jump -- well... ok!`,
		"",
		"Two\nlines here",
		"made in the U.S.",
		"The end",
		"what?! (really)",
	})
	want := []string{
		"a man 's big dog -lrb- on the left -rrb- ca n't jump well ok",
		"",
		"two lines here",
		"made in the u.s.",
		"the end",
		"what ?! -lrb- really -rrb-", // "?!" is one token, not in the toolkit's list
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("caption %d: %q, want %q", i, got[i], want[i])
		}
	}
	// Java lowercasing of special capitals.
	if g := javaLower("ΣΑΣ İ ΟΔΥΣΣΕΥΣ"); g != "σας i\u0307 οδυσσευς" {
		t.Errorf("javaLower: %q", g)
	}
}

func TestGramTableGrows(t *testing.T) {
	tab := newGramTable(1)
	ref := map[uint64]int32{}
	for i := 0; i < 5000; i++ {
		key := gramKey(int32(i%97)-1, int32(i*7919%4093))
		id, old := tab.getOrAdd(key, int32(len(ref)))
		want, ok := ref[key]
		if !ok {
			want = int32(len(ref))
			ref[key] = want
		}
		if old != ok || id != want {
			t.Fatalf("key %x: got (%d,%v), want (%d,%v)", key, id, old, want, ok)
		}
	}
	if tab.n != len(ref) {
		t.Errorf("%d entries, want %d", tab.n, len(ref))
	}
}
