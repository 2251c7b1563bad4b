package caption

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/download/fakeserver"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// tinyOfficial writes a checkpoint in the official format (torch.save of
// the ClipCaptionModel state dict, official names, tied lm_head) with the
// published mapper's shapes around a 16-wide one-layer GPT-2 whose
// vocabulary is the 257 byte-level tokens.
func tinyOfficial(t *testing.T, mc mapper.Config) []byte {
	t.Helper()
	g := gpt2.Presets["gpt2"]
	g.NEmbd, g.NLayer, g.NHead, g.NPositions, g.VocabSize = 16, 1, 1, 128, 257
	mc.EmbedDim = 16
	m, err := clipcap.New(clipcap.Config{Mapper: mc, GPT2: g}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "official.pt")
	if err := checkpoint.ExportOfficial(m, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// byteTokenizer is GPT-2's byte-level vocabulary without merges.
func byteTokenizer(t *testing.T) (vocab, merges []byte) {
	t.Helper()
	v := map[string]int{}
	id := 0
	var rest []int
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			v[string(rune(b))] = id
			id++
		} else {
			rest = append(rest, b)
		}
	}
	for i := range rest {
		v[string(rune(256+i))] = id
		id++
	}
	v["<|endoftext|>"] = id
	vb, _ := json.Marshal(v)
	return vb, []byte("#version: 0.2\n")
}

// placeCLIP puts a tiny ViT with the named tower's embedding width where
// the download cache keeps that tower, as if downloaded earlier.
func placeCLIP(t *testing.T, cache, name string, dim int64) {
	t.Helper()
	store := nn.NewStore(gotch.CPU)
	cfg := clip.Config{Kind: clip.ViT, Width: 64, Layers: 1, PatchSize: 16, InputResolution: 32, EmbedDim: dim, Heads: 1}
	if _, err := clip.New(store.Root().Sub("visual"), gotch.CPU, cfg); err != nil {
		t.Fatal(err)
	}
	sd := map[string]tensorfile.RawTensor{}
	for _, p := range store.All() {
		rt, err := tensorfile.FromTorch(p.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		sd[p.Name] = rt
	}
	m, _ := download.Lookup(name)
	dir := download.ModelDir(cache, name)
	os.MkdirAll(dir, 0o755)
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, m.Files[0].Name), sd, nil); err != nil {
		t.Fatal(err)
	}
}

type world struct {
	cache string
	hub   *fakeserver.Hub
	drive *fakeserver.Drive
	ckpt  map[string][]byte // released name -> official checkpoint
	close func()
	logs  *bytes.Buffer
}

// newWorld starts a fake hub (the COCO and Conceptual mirrors, gpt2's
// tokenizer) and a fake Drive (all three checkpoints), points every
// endpoint and cache variable at them or at temporary directories, and
// places the CLIP towers in the cache.
func newWorld(t *testing.T, flow string) *world {
	t.Helper()
	mlp := mapper.Config{Kind: mapper.MLP, ClipDim: 512, PrefixLength: 10}
	tr := mapper.Config{Kind: mapper.Transformer, ClipDim: 640, PrefixLength: 40, ClipLength: 40, NumLayers: 8}
	w := &world{cache: t.TempDir(), logs: &bytes.Buffer{}, ckpt: map[string][]byte{
		"clipcap-coco": tinyOfficial(t, mlp), "clipcap-conceptual": tinyOfficial(t, mlp), "clipcap-coco-transformer": tinyOfficial(t, tr),
	}}
	vocab, merges := byteTokenizer(t)
	w.hub = &fakeserver.Hub{Files: map[string][]byte{
		"akhaliq/CLIP-prefix-captioning-COCO-weights/coco_weights.pt": w.ckpt["clipcap-coco"],
		"gpt2/vocab.json": vocab, "gpt2/merges.txt": merges,
	}}
	w.drive = &fakeserver.Drive{Flow: flow, Files: map[string][]byte{
		"1IdaBtMSvtyzF0ByVaBHtvM0JYSXRExRX": w.ckpt["clipcap-coco"],
		"14pXWwB4Zm82rsDdvbGguLfx9F8aM7ovT": w.ckpt["clipcap-conceptual"],
		"1GYPToCqFREwi285wPLhuVExlz7DDUDfJ": w.ckpt["clipcap-coco-transformer"],
	}}
	hub, drive := httptest.NewServer(w.hub), httptest.NewServer(w.drive)
	w.close = func() { hub.Close(); drive.Close() }
	t.Cleanup(w.close)
	t.Setenv("CLIPCAP_CACHE", w.cache)
	t.Setenv("CLIPCAP_HF_ENDPOINT", hub.URL)
	t.Setenv("CLIPCAP_DRIVE_ENDPOINT", drive.URL)
	t.Setenv("CLIPCAP_CLIP_ENDPOINT", "http://127.0.0.1:1") // towers are placed, never fetched
	t.Setenv("CLIPCAP_TOKENIZER_DIR", t.TempDir())          // empty: the hub's files are used
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	placeCLIP(t, w.cache, "ViT-B/32", 512)
	placeCLIP(t, w.cache, "RN50x4", 640)
	return w
}

func (w *world) opts() ResolveOptions {
	return ResolveOptions{Logf: func(f string, a ...any) { w.logs.WriteString(f + "\n") },
		Download: download.Options{Backoff: time.Millisecond, Stderr: &bytes.Buffer{}, Logf: func(string, ...any) {}}}
}

func readConfig(t *testing.T, dir string) checkpoint.DirConfig {
	t.Helper()
	c, err := checkpoint.ReadDirConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReleasedCOCODownloadsOnceThenWorksOffline(t *testing.T) {
	w := newWorld(t, fakeserver.FlowForm)
	dir, err := ResolveModel(context.Background(), "clipcap-coco", w.opts())
	if err != nil {
		t.Fatal(err)
	}
	if want := download.ModelDir(w.cache, "clipcap-coco"); dir != want {
		t.Errorf("dir %s, want %s", dir, want)
	}
	c := readConfig(t, dir)
	if c.Model.NormalizePrefix || c.CLIP.Name != "ViT-B/32" || c.CLIP.EmbedDim != 512 || c.Model.Mapper.Kind != mapper.MLP || c.Model.Mapper.PrefixLength != 10 {
		t.Errorf("imported config %+v / %+v", c.Model, c.CLIP)
	}
	if g := c.Generation; g.Strategy != generate.Greedy || g.MaxTokens != 67 || len(g.StopTokens) != 1 || g.StopTokens[0] != generate.DefaultStop {
		t.Errorf("generation %+v, want predict.py's greedy to \".\" within 67 tokens", g)
	}
	if w.hub.ServedCount() != 3 || w.drive.ServedCount() != 0 { // checkpoint + vocab + merges; the mirror comes first
		t.Errorf("hub served %d files, drive %d", w.hub.ServedCount(), w.drive.ServedCount())
	}
	// The imported weights are the checkpoint's.
	official := filepath.Join(t.TempDir(), "o.pt")
	os.WriteFile(official, w.ckpt["clipcap-coco"], 0o644)
	a, err := checkpoint.LoadOfficial(official, checkpoint.OfficialOptions{}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := checkpoint.Load(dir, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Store.All() {
		q, ok := b.Store.Get(p.Name)
		if !ok || !p.Tensor.MustEqual(q, false) {
			t.Fatalf("%s differs after import", p.Name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(w.cache, "downloads", "clipcap-coco")); len(entries) != 0 {
		t.Errorf("the downloaded checkpoint was kept: %v", entries)
	}

	// Offline for good: servers gone, the hub switch on. Loading by name
	// still works, with the CLIP tower, and captions.
	w.close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	cp, err := Load("clipcap-coco", Options{Device: gotch.CPU, Resolve: w.opts()})
	if err != nil {
		t.Fatal(err)
	}
	if cp.CLIP == nil || cp.Pre.NPx != 32 {
		t.Fatal("the released model's CLIP tower was not loaded")
	}
	emb := make([]float32, 512)
	for i := range emb {
		emb[i] = float32(i%7) / 7
	}
	res, err := cp.FromEmbeddings([][]float32{emb}, generate.Options{MaxTokens: 5})
	if err != nil || len(res) != 1 || len(res[0].Tokens) == 0 {
		t.Fatalf("caption %+v, %v", res, err)
	}
	if w.hub.ServedCount() != 3 {
		t.Errorf("offline use fetched again (%d)", w.hub.ServedCount())
	}
}

func TestReleasedTransformerFromDrive(t *testing.T) {
	for _, flow := range []string{fakeserver.FlowForm, fakeserver.FlowCookie} {
		t.Run(flow, func(t *testing.T) {
			w := newWorld(t, flow)
			dir, err := ResolveModel(context.Background(), "clipcap-coco-transformer", w.opts())
			if err != nil {
				t.Fatal(err)
			}
			c := readConfig(t, dir)
			m := c.Model.Mapper
			if !c.Model.NormalizePrefix || c.CLIP.Name != "RN50x4" || m.ClipDim != 640 || m.Kind != mapper.Transformer ||
				m.PrefixLength != 40 || m.ClipLength != 40 || m.NumLayers != 8 {
				t.Errorf("imported %+v, clip %+v: want the notebook's RN50x4, 40/40, 8 layers, normalised", c.Model, c.CLIP)
			}
			if g := c.Generation; g.Strategy != generate.Beam || g.BeamSize != 5 || g.MaxTokens != 67 {
				t.Errorf("generation %+v, want beam 5", g)
			}
			if w.drive.ServedCount() != 1 {
				t.Errorf("drive served %d", w.drive.ServedCount())
			}
		})
	}
}

func TestReleasedFallsBackToDriveWhenMirrorIsGone(t *testing.T) {
	w := newWorld(t, fakeserver.FlowCookieOnly)
	dir, err := ResolveModel(context.Background(), "clipcap-conceptual", w.opts()) // no such file on the fake hub
	if err != nil {
		t.Fatal(err)
	}
	if readConfig(t, dir).CLIP.Name != "ViT-B/32" || w.drive.ServedCount() != 1 {
		t.Errorf("conceptual not fetched from Drive (served %d)", w.drive.ServedCount())
	}
}

func TestReleasedCorruptCacheIsFetchedAgain(t *testing.T) {
	w := newWorld(t, fakeserver.FlowForm)
	dir, err := ResolveModel(context.Background(), "clipcap-coco", w.opts())
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(dir, checkpoint.WeightsFile)
	good, _ := os.ReadFile(weights)
	bad := append([]byte(nil), good...)
	bad[len(bad)-3] ^= 0xff // same size: only the sha256 can tell
	os.WriteFile(weights, bad, 0o644)
	if _, err := ResolveModel(context.Background(), "clipcap-coco", w.opts()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(weights); !bytes.Equal(got, good) {
		t.Error("the corrupted weights were not replaced")
	}
	if n := w.hub.ServedCount(); n != 4 {
		t.Errorf("hub served %d files, want the checkpoint a second time (4)", n)
	}
	if !strings.Contains(w.logs.String(), "fetching it again") {
		t.Errorf("no notice of the re-fetch in %q", w.logs.String())
	}
	// A truncated file is caught by its size.
	os.WriteFile(weights, good[:100], 0o644)
	if _, err := ResolveModel(context.Background(), "clipcap-coco", w.opts()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(weights); st.Size() != int64(len(good)) || w.hub.ServedCount() != 5 {
		t.Errorf("truncated weights not re-fetched (%d bytes, %d served)", st.Size(), w.hub.ServedCount())
	}
}

func TestReleasedDriveQuotaNamesTheMirrorFlag(t *testing.T) {
	w := newWorld(t, fakeserver.FlowForm)
	w.drive.Quota = true
	_, err := ResolveModel(context.Background(), "clipcap-coco-transformer", w.opts())
	if err == nil || !strings.Contains(err.Error(), "too many users have viewed or downloaded") ||
		!strings.Contains(err.Error(), "clipcap download clipcap-coco-transformer --mirror") {
		t.Fatalf("got %v, want the quota message naming --mirror", err)
	}
	if _, err := os.Stat(download.ModelDir(w.cache, "clipcap-coco-transformer")); err == nil {
		t.Error("a model directory exists after the failure")
	}
	// The way out it names: a copy obtained elsewhere.
	copyPath := filepath.Join(t.TempDir(), "transformer_weights.pt")
	os.WriteFile(copyPath, w.ckpt["clipcap-coco-transformer"], 0o644)
	opt := w.opts()
	opt.Mirror = copyPath
	dir, err := Released(context.Background(), "clipcap-coco-transformer", opt)
	if err != nil {
		t.Fatal(err)
	}
	if !readConfig(t, dir).Model.NormalizePrefix {
		t.Error("mirror import lost the transformer's settings")
	}
	if _, err := os.Stat(copyPath); err != nil {
		t.Error("the user's own copy was removed")
	}
}

func TestReleasedInterruptedDownloadResumes(t *testing.T) {
	w := newWorld(t, fakeserver.FlowForm)
	size := len(w.ckpt["clipcap-coco"])
	w.hub.DieAfter = size / 3
	w.drive.Files = nil // no second source to fall back on
	opt := w.opts()
	opt.Download.Attempts = 1
	if _, err := ResolveModel(context.Background(), "clipcap-coco", opt); err == nil {
		t.Fatal("the cut download should fail with one attempt")
	}
	if _, err := os.Stat(download.ModelDir(w.cache, "clipcap-coco")); err == nil {
		t.Fatal("a model directory exists after a failed download")
	}
	if _, err := ResolveModel(context.Background(), "clipcap-coco", w.opts()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range w.hub.RangeHeaders() {
		found = found || r == "bytes="+itoa(size/3)+"-"
	}
	if !found {
		t.Errorf("no request resumed at byte %d: %q", size/3, w.hub.RangeHeaders())
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestReleasedOfflineFailsFastWithTheCommand(t *testing.T) {
	w := newWorld(t, fakeserver.FlowForm)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for name, env := range map[string][2]string{
		"HF_HUB_OFFLINE":       {"HF_HUB_OFFLINE", "1"},
		"unreachable endpoint": {"CLIPCAP_HF_ENDPOINT", dead},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			t.Setenv("CLIPCAP_DRIVE_ENDPOINT", dead)
			start := time.Now()
			// The downloader's own retries (1s backoff, 5 tries) are left
			// in place: the speed must come from not starting them.
			quiet := ResolveOptions{Logf: func(string, ...any) {}, Download: download.Options{Stderr: &bytes.Buffer{}}}
			_, err := Load("clipcap-coco", Options{Device: gotch.CPU, Resolve: quiet})
			if el := time.Since(start); el > time.Second {
				t.Errorf("took %v", el)
			}
			if err == nil || !strings.Contains(err.Error(), "run: clipcap download clipcap-coco") {
				t.Fatalf("got %v, want the download command", err)
			}
		})
	}
	if w.hub.ServedCount() != 0 {
		t.Error("offline resolution reached the hub")
	}
}

func TestResolveModelPassesDirectoriesThrough(t *testing.T) {
	d := t.TempDir()
	for _, arg := range []string{d, "no/such/dir"} {
		if got, err := ResolveModel(context.Background(), arg, ResolveOptions{}); err != nil || got != arg {
			t.Errorf("ResolveModel(%q) = %q, %v", arg, got, err)
		}
	}
}
