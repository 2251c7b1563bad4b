// Package caption turns images or CLIP embeddings into captions with a
// loaded model directory. It is the one inference path that the caption,
// eval, live and serve commands share: CLIP encoder (optional) → mapper →
// GPT-2 generation (model/generate) → GPT-2 BPE decoding.
package caption

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/clipcap/clipcap/internal/torchrt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/download"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
)

// Captioner holds a model directory in memory. Its methods are safe for
// concurrent use; calls run one at a time (batch inside a call instead).
type Captioner struct {
	Model  *clipcap.Model
	Config checkpoint.DirConfig
	Tok    *tokenizer.Tokenizer
	CLIP   *clip.Model // nil when no encoder was found: embeddings only
	Pre    *imageproc.Preprocessor
	Device gotch.Device
	mu     sync.Mutex
}

// Options for Load.
type Options struct {
	Device gotch.Device
	// CLIP is a CLIP weights path or OpenAI model name overriding the model
	// directory's; "-" loads no encoder.
	CLIP string
}

// Caption is one generated caption.
type Caption struct {
	Text   string  `json:"caption"`
	Tokens []int   `json:"tokens"`
	Score  float64 `json:"score"`
}

// Load reads a model directory: weights, config, tokenizer files (from the
// directory, else the default tokenizer cache) and, when it can be found,
// the CLIP encoder the model was trained with.
func Load(dir string, opt Options) (*Captioner, error) {
	m, cfg, err := checkpoint.Load(dir, opt.Device)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		if tok, err = tokenizer.LoadDefault(); err != nil {
			return nil, fmt.Errorf("model %s has no tokenizer files and the default ones are missing: %w", dir, err)
		}
	}
	c := &Captioner{Model: m, Config: cfg, Tok: tok, Device: opt.Device}
	clipPath, err := resolveCLIP(dir, cfg.CLIP, opt.CLIP)
	if err != nil {
		return nil, err
	}
	if clipPath != "" {
		enc, ccfg, err := clip.Load(clipPath, opt.Device)
		if err != nil {
			return nil, err
		}
		if ccfg.EmbedDim != m.Cfg.Mapper.ClipDim {
			return nil, fmt.Errorf("CLIP %s gives %d-dim embeddings, model %s expects %d", clipPath, ccfg.EmbedDim, dir, m.Cfg.Mapper.ClipDim)
		}
		c.CLIP = enc
		c.Pre = imageproc.NewPreprocessor(int(ccfg.InputResolution))
	}
	return c, nil
}

// resolveCLIP finds the encoder's weights: an explicit override (path or
// OpenAI name), the model directory's own file, or the downloaded weights
// of the named OpenAI model. "" means none was found.
func resolveCLIP(dir string, info checkpoint.CLIPInfo, override string) (string, error) {
	if override == "-" {
		return "", nil
	}
	if override != "" {
		return ResolveCLIPName(override)
	}
	if info.Weights != "" {
		p := filepath.Join(dir, info.Weights)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("model %s names CLIP weights %s: %w", dir, info.Weights, err)
		}
		return p, nil
	}
	if info.Name != "" {
		if p, err := ResolveCLIPName(info.Name); err == nil {
			return p, nil
		}
	}
	return "", nil
}

// ResolveCLIPName returns path itself when it is a file, else the cached
// download of the OpenAI CLIP model of that name.
func ResolveCLIPName(nameOrPath string) (string, error) {
	if st, err := os.Stat(nameOrPath); err == nil && !st.IsDir() {
		return nameOrPath, nil
	}
	if _, err := download.Lookup(nameOrPath); err != nil {
		return "", fmt.Errorf("CLIP %q is neither a file nor a known model name (%v)", nameOrPath, download.Names())
	}
	cache, err := download.CacheDir()
	if err != nil {
		return "", err
	}
	dir := download.ModelDir(cache, nameOrPath)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext == ".pt" || ext == ".safetensors" {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("CLIP %s is not downloaded; run: clipcap download %s", nameOrPath, nameOrPath)
}

// DecodeOptions merges per-call decoding options over the model's defaults.
func (c *Captioner) DecodeOptions(o generate.Options) generate.Options {
	d := c.Config.Generation
	if o.Strategy != "" {
		d.Strategy = o.Strategy
	}
	if o.BeamSize > 0 {
		d.BeamSize = o.BeamSize
	}
	if o.MaxTokens > 0 {
		d.MaxTokens = o.MaxTokens
	}
	if o.StopTokens != nil {
		d.StopTokens = o.StopTokens
	}
	if o.Temperature > 0 {
		d.Temperature = o.Temperature
	}
	if o.TopK > 0 {
		d.TopK = o.TopK
	}
	if o.TopP > 0 {
		d.TopP = o.TopP
	}
	if o.Seed != 0 {
		d.Seed = o.Seed
	}
	d.NoCache = o.NoCache
	return d.WithDefaults()
}

// FromEmbeddings captions CLIP embeddings [N][D] in one batch.
func (c *Captioner) FromEmbeddings(emb [][]float32, opt generate.Options) ([]Caption, error) {
	if len(emb) == 0 {
		return nil, nil
	}
	d := int(c.Model.Cfg.Mapper.ClipDim)
	flat := make([]float32, 0, len(emb)*d)
	for i, e := range emb {
		if len(e) != d {
			return nil, fmt.Errorf("embedding %d has width %d, the model expects %d", i, len(e), d)
		}
		flat = append(flat, e...)
	}
	x, err := ts.NewTensorFromData(flat, []int64{int64(len(emb)), int64(d)})
	if err != nil {
		return nil, err
	}
	if c.Device.IsCuda() {
		x = x.MustTo(c.Device, true)
	}
	defer x.MustDrop()
	return c.fromTensor(x, opt)
}

func (c *Captioner) fromTensor(x *ts.Tensor, opt generate.Options) ([]Caption, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var prefix *ts.Tensor
	var err error
	torchrt.NoGrad(func() { prefix, err = c.Model.Prefix(x, false) })
	if err != nil {
		return nil, err
	}
	defer prefix.MustDrop()
	res, err := generate.Generate(c.Model.GPT, prefix, c.DecodeOptions(opt))
	if err != nil {
		return nil, err
	}
	out := make([]Caption, len(res))
	for i, r := range res {
		text, err := c.Tok.Decode(r.Tokens)
		if err != nil {
			return nil, err
		}
		out[i] = Caption{Text: text, Tokens: r.Tokens, Score: r.Score}
	}
	return out, nil
}

// Encode runs the CLIP encoder on preprocessed images (CHW float32 at the
// encoder's resolution) and returns the embeddings.
func (c *Captioner) Encode(pixels [][]float32) ([][]float32, error) {
	if c.CLIP == nil {
		return nil, fmt.Errorf("this model has no CLIP encoder: give --clip, or caption --embedding files")
	}
	if len(pixels) == 0 {
		return nil, nil
	}
	n := int64(c.Pre.NPx)
	flat := make([]float32, 0, len(pixels)*len(pixels[0]))
	for _, p := range pixels {
		flat = append(flat, p...)
	}
	x, err := ts.NewTensorFromData(flat, []int64{int64(len(pixels)), 3, n, n})
	if err != nil {
		return nil, err
	}
	if c.Device.IsCuda() {
		x = x.MustTo(c.Device, true)
	}
	defer x.MustDrop()
	c.mu.Lock()
	emb, err := c.CLIP.Encode(x)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	defer emb.MustDrop()
	cpu := emb.MustTo(gotch.CPU, false)
	defer cpu.MustDrop()
	d := int(cpu.MustSize()[1])
	vals := make([]float32, len(pixels)*d)
	cpu.MustCopyData(vals, uint(len(vals)))
	out := make([][]float32, len(pixels))
	for i := range out {
		out[i] = vals[i*d : (i+1)*d]
	}
	return out, nil
}

// FromPixels captions preprocessed images in one batch.
func (c *Captioner) FromPixels(pixels [][]float32, opt generate.Options) ([]Caption, error) {
	emb, err := c.Encode(pixels)
	if err != nil {
		return nil, err
	}
	return c.FromEmbeddings(emb, opt)
}

// FromImages decodes nothing: it preprocesses decoded images and captions them.
func (c *Captioner) FromImages(images []*imageproc.Image, opt generate.Options) ([]Caption, error) {
	if c.CLIP == nil {
		return nil, fmt.Errorf("this model has no CLIP encoder: give --clip, or caption --embedding files")
	}
	px := make([][]float32, len(images))
	for i, im := range images {
		p, err := c.Pre.Preprocess(im)
		if err != nil {
			return nil, err
		}
		px[i] = p
	}
	return c.FromPixels(px, opt)
}
