package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/demo"
	"github.com/clipcap/clipcap/eval/metrics"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
)

// clipDim is the tiny model's CLIP width: the demo random CLIP tower's.
var clipDim = int(demo.RandomCLIPConfig.EmbedDim)

// decode keeps generation short and deterministic.
var decode = generate.Options{Strategy: generate.Greedy, MaxTokens: 6}

var modelDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eval-model-")
	if err == nil {
		err = writeTinyModel(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tiny model:", err)
		os.Exit(1)
	}
	modelDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeTinyModel saves a random ClipCap model (GPT-2 32-d, 2 layers, 4
// heads, the toy BPE vocabulary) with a small random CLIP tower.
func writeTinyModel(dir string) error {
	torchrt.ManualSeed(5)
	g := gpt2.Config{VocabSize: 317, NPositions: 64, NEmbd: 32, NLayer: 2, NHead: 4, Activation: "gelu_new", LayerNormEps: 1e-5, InitializerRange: 0.3}
	cfg := clipcap.Config{GPT2: g, Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: int64(clipDim), EmbedDim: 32, PrefixLength: 3}}
	m, err := clipcap.New(cfg, gotch.CPU)
	if err != nil {
		return err
	}
	dc := checkpoint.NewDirConfig(m, "demo-random-vit")
	dc.CLIP.Weights = "clip.safetensors"
	if err := checkpoint.Save(dir, m, dc, "../data/tokenizer/testdata/toy"); err != nil {
		return err
	}
	return demo.WriteRandomCLIP(filepath.Join(dir, "clip.safetensors"), 1)
}

type storeImage struct {
	id, split, domain string
	captions          []string
}

// writeStore writes a feature store with one deterministic embedding per
// image.
func writeStore(t *testing.T, dim int, dataset string, imgs []storeImage) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	w, err := featstore.Create(dir, featstore.Meta{CLIPModel: "demo-random-vit", EmbedDim: dim, Dataset: dataset})
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range imgs {
		emb := make([]float32, dim)
		for k := range emb {
			emb[k] = float32(math.Sin(float64(i*dim+k) * 0.37))
		}
		var caps []featstore.Caption
		texts := im.captions
		if len(texts) == 0 {
			texts = []string{""}
		}
		for _, c := range texts {
			caps = append(caps, featstore.Caption{ImageID: im.id, Caption: c, Split: im.split, Domain: im.domain})
		}
		if err := w.Add(emb, caps); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

var phrases = []string{"a man riding a horse.", "Two dogs play in the snow", "a plate of food, on a table.",
	"The cat's bed is red", "a red bus parked near the U.S. flag", "people at the beach"}

func cocoImages(n int, split string) []storeImage {
	var out []storeImage
	for i := 0; i < n; i++ {
		out = append(out, storeImage{id: fmt.Sprint(100 + i), split: split,
			captions: []string{phrases[i%len(phrases)], phrases[(i+2)%len(phrases)], phrases[(i+3)%len(phrases)]}})
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkCorpus compares a metrics.json-style map with a report's corpus.
func checkCorpus(t *testing.T, what string, got map[string]float64, want *metrics.Report) {
	t.Helper()
	if len(got) != len(want.Corpus) {
		t.Errorf("%s: keys %v, want %v", what, got, want.Corpus)
	}
	for k, v := range want.Corpus {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %s = %v, want %v", what, k, got[k], v)
		}
	}
}

func TestEvalFromStore(t *testing.T) {
	imgs := append(cocoImages(5, "test"), storeImage{id: "900", split: "train", captions: []string{"not this one"}})
	store := writeStore(t, clipDim, "coco", imgs)
	out := filepath.Join(t.TempDir(), "out")
	sum, err := Run(context.Background(), Options{Model: modelDir, Features: store, Split: "test", Out: out, Decode: decode, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}

	// results.json: every test image once, integer ids, the captioner's text.
	var res []map[string]any
	readJSON(t, filepath.Join(out, ResultsFile), &res)
	if len(res) != 5 {
		t.Fatalf("%d results, want 5", len(res))
	}
	c, err := caption.Load(modelDir, caption.Options{Device: gotch.CPU, CLIP: "-"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := featstore.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, r := range res {
		if id, ok := r["image_id"].(float64); !ok || id != float64(100+i) {
			t.Errorf("result %d image_id %#v, want the integer %d", i, r["image_id"], 100+i)
		}
	}
	for lo := 0; lo < 5; lo += 2 {
		var emb [][]float32
		for i := lo; i < min(lo+2, 5); i++ {
			e := make([]float32, clipDim)
			if err := st.Embedding(i, e); err != nil {
				t.Fatal(err)
			}
			emb = append(emb, e)
		}
		want, err := c.FromEmbeddings(emb, decode)
		if err != nil {
			t.Fatal(err)
		}
		for k, w := range want {
			if got := res[lo+k]["caption"]; got != cleanText(w.Text) {
				t.Errorf("image %d caption %q, captioner gives %q", lo+k, got, w.Text)
			}
		}
	}

	// metrics.json is metrics.Score of results.json against the store's
	// references of the split, built here independently.
	results, err := metrics.LoadResults(filepath.Join(out, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	refs := &metrics.Annotations{}
	for _, im := range imgs[:5] {
		var n int64
		fmt.Sscan(im.id, &n)
		refs.Images = append(refs.Images, metrics.IntID(n))
		for _, cp := range im.captions {
			refs.Captions = append(refs.Captions, metrics.Caption{ImageID: metrics.IntID(n), Caption: cp})
		}
	}
	want, err := metrics.Score(results, refs, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	readJSON(t, filepath.Join(out, MetricsFile), &got)
	checkCorpus(t, "metrics.json", got, want)
	if _, ok := got[metrics.Meteor]; ok {
		t.Error("METEOR reported without a jar")
	}
	// references.json scores the same way (what `clipcap score` would do).
	ann, err := metrics.LoadAnnotations(filepath.Join(out, ReferencesFile))
	if err != nil {
		t.Fatal(err)
	}
	again, err := metrics.Score(results, ann, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkCorpus(t, "references.json", got, again)

	var per []map[string]any
	readJSON(t, filepath.Join(out, PerImageFile), &per)
	if len(per) != 5 || per[0]["CIDEr"] != want.Images[0].Scores[metrics.CIDEr] {
		t.Errorf("per_image.json: %d entries, first %v; want 5, CIDEr %v", len(per), per[0], want.Images[0].Scores[metrics.CIDEr])
	}
	for i, r := range sum.Results {
		if r.Caption != res[i]["caption"] {
			t.Errorf("image %d: scored %q, wrote %q", i, r.Caption, res[i]["caption"])
		}
	}
	if len(sum.Results) != 5 || sum.ByDomain != nil {
		t.Errorf("summary: %d results, domains %v", len(sum.Results), sum.ByDomain)
	}

	rep, err := os.ReadFile(filepath.Join(out, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MLP mapper + GPT-2 fine-tuning", "| BLEU-4 | " + pct(want.Corpus, metrics.Bleu4) + " | 32.15 |",
		"| METEOR | not computed | 27.10 |", "| CIDEr-D | " + pct(want.Corpus, metrics.CIDEr) + " | 108.35 |", "image 100:", "a man riding a horse."} {
		if !strings.Contains(string(rep), s) {
			t.Errorf("report.md lacks %q:\n%s", s, rep)
		}
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestEvalLimitAndAnnotations(t *testing.T) {
	imgs := cocoImages(6, "val")
	store := writeStore(t, clipDim, "conceptual", imgs)
	// Annotations with string ids for images 100-105, references differing
	// from the store's.
	type a struct {
		ImageID string `json:"image_id"`
		Caption string `json:"caption"`
	}
	var anns []a
	var images []map[string]string
	for i := 0; i < 6; i++ {
		id := fmt.Sprint(100 + i)
		images = append(images, map[string]string{"id": id, "file_name": id + ".png"})
		anns = append(anns, a{id, "a photo of thing " + id}, a{id, "something else entirely"})
	}
	annPath := filepath.Join(t.TempDir(), "ann.json")
	b, _ := json.Marshal(map[string]any{"images": images, "annotations": anns})
	if err := os.WriteFile(annPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Model: modelDir, Features: store, Annotations: annPath, Split: "val", Out: out, Decode: decode, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var res []map[string]any
	readJSON(t, filepath.Join(out, ResultsFile), &res)
	if len(res) != 2 || res[0]["image_id"] != "100" || res[1]["image_id"] != "101" {
		t.Fatalf("results %v: want images \"100\" and \"101\" (string ids, as the annotations)", res)
	}
	refs := &metrics.Annotations{Images: []metrics.ImageID{metrics.StringID("100"), metrics.StringID("101")}}
	for _, x := range anns[:4] {
		refs.Captions = append(refs.Captions, metrics.Caption{ImageID: metrics.StringID(x.ImageID), Caption: x.Caption})
	}
	want, err := metrics.Score(sum.Results, refs, metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	readJSON(t, filepath.Join(out, MetricsFile), &got)
	checkCorpus(t, "metrics.json", got, want)
	rep, _ := os.ReadFile(filepath.Join(out, ReportFile))
	if !strings.Contains(string(rep), "| ROUGE-L | "+pct(want.Corpus, metrics.RougeL)+" | 26.71 |") {
		t.Errorf("report.md lacks the Conceptual Captions row:\n%s", rep)
	}
}

func TestEvalNocapsDomains(t *testing.T) {
	domains := []string{"in-domain", "near-domain", "out-domain", "near-domain", "in-domain", "out-domain", "near-domain"}
	var imgs []storeImage
	for i, d := range domains {
		imgs = append(imgs, storeImage{id: fmt.Sprint(i), split: "val", domain: d,
			captions: []string{phrases[i%len(phrases)], phrases[(i+1)%len(phrases)]}})
	}
	store := writeStore(t, clipDim, "nocaps", imgs)
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Model: modelDir, Features: store, Split: "val", Out: out, Decode: decode, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]float64
	readJSON(t, filepath.Join(out, DomainsFile), &got)
	if len(got) != 4 {
		t.Fatalf("domains.json has %v, want in/near/out-domain and overall", got)
	}
	for _, d := range append(Domains, "overall") {
		res := []metrics.Caption{}
		refs := &metrics.Annotations{}
		for i, im := range imgs {
			if d != "overall" && im.domain != d {
				continue
			}
			res = append(res, sum.Results[i])
			refs.Images = append(refs.Images, metrics.IntID(int64(i)))
			for _, cp := range im.captions {
				refs.Captions = append(refs.Captions, metrics.Caption{ImageID: metrics.IntID(int64(i)), Caption: cp})
			}
		}
		want, err := metrics.Score(res, refs, metrics.Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkCorpus(t, d, got[d], want)
	}
	rep, _ := os.ReadFile(filepath.Join(out, ReportFile))
	if !strings.Contains(string(rep), "(paper 67.69)") || !strings.Contains(string(rep), "| near-domain | 3 |") {
		t.Errorf("report.md lacks the nocaps table:\n%s", rep)
	}
}

// writePNGs writes n small images with different colour patterns.
func writePNGs(t *testing.T, dir string, n int) []string {
	t.Helper()
	var names []string
	for k := 0; k < n; k++ {
		img := image.NewRGBA(image.Rect(0, 0, 48+8*k, 40))
		for y := 0; y < img.Bounds().Dy(); y++ {
			for x := 0; x < img.Bounds().Dx(); x++ {
				img.Set(x, y, color.RGBA{uint8(x * (k + 3)), uint8(y * 5), uint8(80 * k), 255})
			}
		}
		name := fmt.Sprintf("img_%d.png", k)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		names = append(names, name)
	}
	return names
}

func TestEvalImages(t *testing.T) {
	root := t.TempDir()
	files := writePNGs(t, root, 3)
	var images []map[string]any
	var anns []map[string]any
	for i, f := range files {
		images = append(images, map[string]any{"id": 7 + i, "file_name": f})
		for _, c := range phrases[i : i+2] {
			anns = append(anns, map[string]any{"image_id": 7 + i, "caption": c})
		}
	}
	annPath := filepath.Join(root, "ann.json")
	b, _ := json.Marshal(map[string]any{"images": images, "annotations": anns})
	if err := os.WriteFile(annPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sum, err := Run(context.Background(), Options{Model: modelDir, Images: root, Annotations: annPath, Split: "test", Out: out, Decode: decode, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 3 || sum.Dataset != "coco" {
		t.Fatalf("%d results, dataset %q", len(sum.Results), sum.Dataset)
	}
	// Same captions as encoding the files through the captioner directly.
	c, err := caption.Load(modelDir, caption.Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		px, err := c.Pre.File(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.FromPixels([][]float32{px}, decode)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Results[i].Caption != cleanText(want[0].Text) || sum.Results[i].ImageID != metrics.IntID(int64(7+i)) {
			t.Errorf("image %d: %v, want %q", i, sum.Results[i], want[0].Text)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	store := writeStore(t, clipDim, "coco", cocoImages(2, "test"))
	narrow := writeStore(t, 8, "coco", cocoImages(2, "test"))
	noRefs := writeStore(t, clipDim, "coco", []storeImage{{id: "5", split: "test"}})
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"annotations": [{"image_id": 100}]}`), 0o644)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"annotations": [`), 0o644)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"image_id": 1, "caption": "a"}]}`), 0o644)

	base := Options{Model: modelDir, Features: store, Split: "test", Out: filepath.Join(dir, "out"), Decode: decode}
	cases := []struct {
		name string
		edit func(o *Options)
		want []string
	}{
		{"missing split", func(o *Options) { o.Split = "val" }, []string{`no images in split "val"`, "test: 6 captions"}},
		{"dim mismatch", func(o *Options) { o.Features = narrow }, []string{"8-dim", "expects 128"}},
		{"malformed annotations", func(o *Options) { o.Annotations = bad }, []string{bad, "has no caption"}},
		{"truncated annotations", func(o *Options) { o.Annotations = broken }, []string{broken}},
		{"references for other images", func(o *Options) { o.Annotations = other }, []string{other, "2 of the 2 images", "100, 101"}},
		{"no references in store", func(o *Options) { o.Features = noRefs }, []string{"have no reference captions", "give --annotations"}},
		{"images without annotations", func(o *Options) { o.Features, o.Images = "", dir }, []string{"--images needs --annotations"}},
		{"both sources", func(o *Options) { o.Images = dir }, []string{"exactly one of"}},
		{"no split", func(o *Options) { o.Split = "" }, []string{"--split"}},
		{"missing model", func(o *Options) { o.Model = filepath.Join(dir, "nomodel") }, []string{"nomodel"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := Run(context.Background(), o)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := os.Stat(base.Out); !os.IsNotExist(err) {
		t.Errorf("failed runs created %s", base.Out)
	}
}
