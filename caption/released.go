package caption

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/mapper"
)

// releasedSpec is how a released checkpoint was trained and decoded in the
// original repository's demos, which its shapes alone do not say.
type releasedSpec struct {
	CLIP       string
	Normalize  bool // the transformer notebook L2-normalises the CLIP embedding
	Generation generate.Options
	Mapper     mapper.Config // expected shapes (EmbedDim unchecked)
}

var (
	// predict.py / the MLP notebooks: generate2, greedy to "." or 67 tokens.
	greedyDemo = generate.Options{Strategy: generate.Greedy, MaxTokens: 67, StopTokens: []int{generate.DefaultStop}}
	// the transformer notebook: generate_beam, beam 5, same stop and length.
	beamDemo = generate.Options{Strategy: generate.Beam, BeamSize: 5, MaxTokens: 67, StopTokens: []int{generate.DefaultStop}}
)

var releasedSpecs = map[string]releasedSpec{
	"clipcap-coco": {CLIP: "ViT-B/32", Generation: greedyDemo,
		Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: 512, PrefixLength: 10}},
	"clipcap-conceptual": {CLIP: "ViT-B/32", Generation: greedyDemo,
		Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: 512, PrefixLength: 10}},
	"clipcap-coco-transformer": {CLIP: "RN50x4", Normalize: true, Generation: beamDemo,
		Mapper: mapper.Config{Kind: mapper.Transformer, ClipDim: 640, PrefixLength: 40, ClipLength: 40, NumLayers: 8}},
}

// ManifestFile, in a released model's directory, records the checkpoint it
// was imported from and the size and sha256 of every file; it is written
// last, so its presence marks the directory complete.
const ManifestFile = "released.json"

// ResolveOptions tune ResolveModel.
type ResolveOptions struct {
	CacheDir string // default download.CacheDir()
	// Mirror is a URL or a local copy of the checkpoint, used before the
	// registry's sources (for when Google Drive's quota blocks).
	Mirror string
	// Download tunes the transfers; its CacheDir is ignored.
	Download download.Options
	// ProbeTimeout bounds the reachability check that makes an offline
	// first use fail at once (default 900ms).
	ProbeTimeout time.Duration
	// KeepCheckpoint keeps the downloaded official checkpoint beside the
	// imported directory (default: removed once imported).
	KeepCheckpoint bool
	Logf           func(string, ...any) // default: to stderr
}

// IsReleased reports whether name is a released model's name.
func IsReleased(name string) bool {
	_, ok := download.LookupReleased(name)
	return ok
}

// resolveMu serialises resolutions within a process (serve may load
// concurrently); the downloader's file lock guards across processes.
var resolveMu sync.Mutex

// ResolveModel turns a model argument into a model directory. An existing
// path is returned as is; a released model's name ("clipcap-coco", ...)
// resolves to its directory in the cache, which on first use is downloaded
// and imported with the settings of the original's demo, and on every
// later use verified against the sizes and sha256s recorded then (a
// changed file is fetched again). Other arguments are returned unchanged
// for the loader to report.
func ResolveModel(ctx context.Context, nameOrDir string, opt ResolveOptions) (string, error) {
	if _, err := os.Stat(nameOrDir); err == nil {
		return nameOrDir, nil
	}
	if !IsReleased(nameOrDir) {
		return nameOrDir, nil
	}
	return Released(ctx, nameOrDir, opt)
}

// Released returns the directory of the named released model, fetching,
// importing or re-verifying it as ResolveModel describes.
func Released(ctx context.Context, name string, opt ResolveOptions) (string, error) {
	r, ok := download.LookupReleased(name)
	if !ok {
		return "", fmt.Errorf("%q is not a released model (%s)", name, strings.Join(download.ReleasedNames(), ", "))
	}
	spec := releasedSpecs[r.Name]
	if opt.CacheDir == "" {
		d, err := download.CacheDir()
		if err != nil {
			return "", err
		}
		opt.CacheDir = d
	}
	if opt.Logf == nil {
		opt.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	if opt.ProbeTimeout <= 0 {
		opt.ProbeTimeout = 900 * time.Millisecond
	}
	opt.Download.CacheDir = opt.CacheDir
	resolveMu.Lock()
	defer resolveMu.Unlock()

	dir := download.ModelDir(opt.CacheDir, r.Name)
	var origin *download.Record
	if m, err := download.ReadManifest(filepath.Join(dir, ManifestFile)); err == nil {
		verr := m.Verify(dir)
		if verr == nil {
			if err := ensureCLIP(ctx, r.Name, spec.CLIP, opt); err != nil {
				return "", err
			}
			return dir, nil
		}
		opt.Logf("%s: %v; fetching it again", r.Name, verr)
		origin = m.Origin // the same checkpoint must come back
	}
	if err := fetchReleased(ctx, r, spec, dir, origin, opt); err != nil {
		return "", err
	}
	if err := ensureCLIP(ctx, r.Name, spec.CLIP, opt); err != nil {
		return "", err
	}
	return dir, nil
}

// offlineError says a released model cannot be fetched now and names the
// command that fetches it.
func offlineError(name, why string) error {
	return fmt.Errorf("%s is not downloaded yet and %s; with network access, run: %s", name, why, download.DownloadCommand(name))
}

func fetchReleased(ctx context.Context, r download.Released, spec releasedSpec, dir string, origin *download.Record, opt ResolveOptions) error {
	ckpt, err := fetchCheckpoint(ctx, r, origin, opt)
	if err != nil {
		return err
	}
	rec, err := download.RecordFile(ckpt.path)
	if err != nil {
		return err
	}
	if origin != nil && rec.SHA256 != origin.SHA256 {
		return fmt.Errorf("%s: %s has sha256 %s, but the copy first downloaded had %s; not importing a different checkpoint under the same name",
			r.Name, ckpt.path, rec.SHA256, origin.SHA256)
	}
	opt.Logf("%s: importing %s", r.Name, filepath.Base(ckpt.path))
	tokDir, err := ensureTokenizer(ctx, opt)
	if err != nil {
		return fmt.Errorf("%s: GPT-2's tokenizer files: %w", r.Name, err)
	}
	m, err := checkpoint.LoadOfficial(ckpt.path, checkpoint.OfficialOptions{NormalizePrefix: spec.Normalize}, gotch.CPU)
	if err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	if err := checkShapes(r.Name, m.Cfg, spec.Mapper); err != nil {
		return err
	}
	// Import into a sibling directory and rename it into place, so the
	// name never points at half a model.
	tmp := dir + ".importing"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gen := spec.Generation
	if err := checkpoint.SaveImported(tmp, m, checkpoint.ImportOptions{CLIPName: spec.CLIP, TokenizerDir: tokDir, Generation: &gen}); err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	man := download.Manifest{Name: r.Name, Source: ckpt.source, File: filepath.Base(ckpt.path), Origin: &rec, Files: map[string]download.Record{}}
	for _, f := range []string{checkpoint.ConfigFile, checkpoint.WeightsFile, checkpoint.VocabFile, checkpoint.MergesFile} {
		fr, err := download.RecordFile(filepath.Join(tmp, f))
		if err != nil {
			return err
		}
		man.Files[f] = fr
	}
	if err := download.WriteManifest(filepath.Join(tmp, ManifestFile), man); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	if ckpt.downloaded && !opt.KeepCheckpoint {
		os.RemoveAll(ckpt.stage)
	}
	opt.Logf("%s: ready in %s", r.Name, dir)
	return nil
}

// checkShapes refuses a checkpoint that is not the published model of
// that name: its settings (normalisation, CLIP tower) would be wrong.
func checkShapes(name string, got clipcap.Config, want mapper.Config) error {
	g := got.Mapper
	if g.Kind != want.Kind || g.ClipDim != want.ClipDim || g.PrefixLength != want.PrefixLength ||
		(want.Kind == mapper.Transformer && (g.ClipLength != want.ClipLength || g.NumLayers != want.NumLayers)) {
		return fmt.Errorf("%s: the checkpoint is a %s mapper from %d-dim CLIP with prefix %d (clip length %d, %d layers), not the published %s mapper from %d-dim CLIP with prefix %d (clip length %d, %d layers)",
			name, g.Kind, g.ClipDim, g.PrefixLength, g.ClipLength, g.NumLayers, want.Kind, want.ClipDim, want.PrefixLength, want.ClipLength, want.NumLayers)
	}
	return nil
}

type fetched struct {
	path, source string
	downloaded   bool   // ours to remove once imported
	stage        string // the download directory, removed with it
}

// fetchCheckpoint obtains the official checkpoint: a local mirror file as
// is, else the first source that serves it.
func fetchCheckpoint(ctx context.Context, r download.Released, origin *download.Record, opt ResolveOptions) (fetched, error) {
	if opt.Mirror != "" {
		if st, err := os.Stat(opt.Mirror); err == nil && st.Mode().IsRegular() {
			return fetched{path: opt.Mirror, source: opt.Mirror}, nil
		}
	}
	sources := r.Sources()
	if opt.Mirror != "" {
		if !strings.HasPrefix(opt.Mirror, "http://") && !strings.HasPrefix(opt.Mirror, "https://") {
			return fetched{}, fmt.Errorf("--mirror %s: neither a file nor an http(s) URL", opt.Mirror)
		}
		sources = append([]download.File{{Name: r.File, URL: opt.Mirror}}, sources...)
	}
	if r.HFRepo != "" {
		if p := download.HFCachedFile(r.HFRepo, r.File); p != "" {
			opt.Logf("%s: using %s from the Hugging Face cache", r.Name, p)
			return fetched{path: p, source: p}, nil
		}
	}
	if download.Offline() {
		return fetched{}, offlineError(r.Name, "HF_HUB_OFFLINE is set")
	}
	for i := range sources {
		if origin != nil {
			sources[i].SHA256 = origin.SHA256
		}
	}
	live, err := reachable(ctx, sources, opt.ProbeTimeout)
	if err != nil {
		return fetched{}, offlineError(r.Name, err.Error())
	}
	stage := filepath.Join(opt.CacheDir, "downloads", download.DirName(r.Name))
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return fetched{}, err
	}
	var errs []string
	for _, src := range live {
		// One partial file per source: the mirrors may hold other bytes
		// than Drive, and a resume must not splice them.
		host := hostOf(src.URL)
		dest := filepath.Join(stage, download.DirName(strings.ReplaceAll(host, ":", "_")), r.File)
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return fetched{}, err
		}
		opt.Logf("%s: downloading %s from %s (first use; kept in %s)", r.Name, r.File, host, opt.CacheDir)
		err := download.FetchFile(ctx, src, dest, opt.Download)
		if err == nil {
			return fetched{path: dest, source: src.URL, downloaded: true, stage: stage}, nil
		}
		if ctx.Err() != nil {
			return fetched{}, err
		}
		if errors.Is(err, download.ErrDriveQuota) {
			err = fmt.Errorf("%w.\nTry again later, or download %s yourself (a browser signed in to Google often still can: %s) and run:\n  clipcap download %s --mirror PATH_OR_URL",
				err, r.File, src.URL, r.Name)
		}
		errs = append(errs, err.Error())
	}
	return fetched{}, fmt.Errorf("%s: no source served %s:\n  %s", r.Name, r.File, strings.Join(errs, "\n  "))
}

// reachable keeps the sources whose host answers a TCP dial, probing them
// concurrently; none answering means offline.
func reachable(ctx context.Context, sources []download.File, timeout time.Duration) ([]download.File, error) {
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func(i int, u string) {
			defer wg.Done()
			errs[i] = download.Reachable(ctx, u, timeout)
		}(i, s.URL)
	}
	wg.Wait()
	var live []download.File
	var why []string
	for i, s := range sources {
		if errs[i] == nil {
			live = append(live, s)
		} else {
			why = append(why, errs[i].Error())
		}
	}
	if len(live) == 0 {
		return nil, errors.New(strings.Join(why, "; "))
	}
	return live, nil
}

func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

// ensureTokenizer finds GPT-2's vocab.json and merges.txt: the default
// tokenizer directory (scripts/fetch-tokenizer.sh), the Hugging Face
// cache, else the hub's gpt2 repository, downloaded into the cache.
func ensureTokenizer(ctx context.Context, opt ResolveOptions) (string, error) {
	if d := tokenizer.DefaultDir(); d != "" {
		if _, err := tokenizer.Load(d); err == nil {
			return d, nil
		}
	}
	if v := download.HFCachedFile("gpt2", checkpoint.VocabFile); v != "" {
		if _, err := tokenizer.Load(filepath.Dir(v)); err == nil {
			return filepath.Dir(v), nil
		}
	}
	m, err := download.Lookup("gpt2")
	if err != nil {
		return "", err
	}
	dir := download.ModelDir(opt.CacheDir, "gpt2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range m.Files {
		if f.Name != checkpoint.VocabFile && f.Name != checkpoint.MergesFile {
			continue
		}
		if err := download.FetchFile(ctx, f, filepath.Join(dir, f.Name), opt.Download); err != nil {
			return "", err
		}
	}
	if _, err := tokenizer.Load(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// ensureCLIP makes sure the CLIP tower the model was trained with is in
// the cache, fetching it by name when it is not (and the network may be
// used).
func ensureCLIP(ctx context.Context, model, name string, opt ResolveOptions) error {
	m, err := download.Lookup(name)
	if err != nil {
		return err
	}
	p := filepath.Join(download.ModelDir(opt.CacheDir, name), m.Files[0].Name)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	why := "HF_HUB_OFFLINE is set"
	if !download.Offline() {
		if why = ""; download.Reachable(ctx, m.Files[0].URL, opt.ProbeTimeout) != nil {
			why = fmt.Sprintf("%s cannot be reached", hostOf(m.Files[0].URL))
		}
	}
	if why != "" {
		return fmt.Errorf("%s needs CLIP %s, which is not downloaded yet and %s; with network access, run: %s",
			model, name, why, download.DownloadCommand(model))
	}
	_, err = ResolveCLIP(ctx, name, opt.CacheDir, true)
	return err
}

// DownloadOptions for Download.
type DownloadOptions struct {
	CacheDir string // weights and models (default download.CacheDir())
	DataDir  string // datasets (default data/<name>)
	Mirror   string // released models: a local copy or URL of the checkpoint, tried first
	KeepZips bool   // datasets: keep the archives after unpacking
}

// Download fetches one thing by name, whatever it is: a released ClipCap
// model (downloaded and imported into a model directory), a dataset, or
// published GPT-2 / CLIP weights. It returns what to tell the user: the
// directory, or for a dataset the commands to run next.
func Download(ctx context.Context, name string, o DownloadOptions) (string, error) {
	if IsReleased(name) {
		return Released(ctx, name, ResolveOptions{CacheDir: o.CacheDir, Mirror: o.Mirror})
	}
	if _, ok := download.LookupDataset(name); ok {
		next, err := download.FetchDataset(ctx, name, download.DatasetOptions{
			Options: download.Options{CacheDir: o.CacheDir}, Dir: o.DataDir, KeepZips: o.KeepZips})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s is ready. Next:\n  %s", name, strings.Join(next, "\n  ")), nil
	}
	if o.Mirror != "" {
		return "", fmt.Errorf("--mirror applies to released models (%s), not %s", strings.Join(download.ReleasedNames(), ", "), name)
	}
	return download.Fetch(ctx, name, download.Options{CacheDir: o.CacheDir})
}
