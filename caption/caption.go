// Package caption turns images or CLIP embeddings into captions with a
// loaded model directory. It is the one inference path that the caption,
// eval, live and serve commands share: CLIP encoder (optional) → mapper →
// GPT-2 generation (model/generate) → GPT-2 BPE decoding.
package caption

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/nn"
)

// Captioner holds a model directory in memory. Its methods are safe for
// concurrent use: calls on the CLIP encoder run one at a time, and so do
// calls on the mapper + GPT-2, but one of each may run together, so a
// caller can encode the next image while the last one decodes.
type Captioner struct {
	Model  *clipcap.Model
	Config checkpoint.DirConfig
	Tok    *tokenizer.Tokenizer
	CLIP   *clip.Model // nil when no encoder was found: embeddings only
	Pre    *imageproc.Preprocessor
	Device gotch.Device
	// RawText keeps decoded captions exactly as the tokens spell them; by
	// default they get Hugging Face decode's clean-up (" ." -> ".", " 's"
	// -> "'s", ...), as the original's captions do. Tokens are the same
	// either way.
	RawText bool
	// Precision of the GPT-2 and mapper weights; PrecisionNote says what
	// converting them cost at load ("" for fp32).
	Precision     nn.Precision
	PrecisionNote string
	stored        nn.Precision // form of the weights in the model file (precision.go)
	mu            sync.Mutex   // mapper + GPT-2
	clipMu        sync.Mutex   // CLIP encoder
}

// Options for Load.
type Options struct {
	Device gotch.Device
	// CLIP is a CLIP weights path or OpenAI model name overriding the model
	// directory's; "-" loads no encoder.
	CLIP string
	// Resolve tunes the fetching of released models named instead of a
	// directory.
	Resolve ResolveOptions
	// RawText sets Captioner.RawText.
	RawText bool
	// Precision of the GPT-2 and mapper weights: fp32, bf16 or int8; ""
	// takes the model directory's generation.precision (default fp32).
	Precision string
	// CLIPPrecision of the CLIP tower: "" follows the model directory's
	// clip.precision, else Precision (bf16 for bf16 and int8); fp32 or bf16
	// override both.
	CLIPPrecision string
}

// Caption is one generated caption.
type Caption struct {
	Text   string  `json:"caption"`
	Tokens []int   `json:"tokens"`
	Score  float64 `json:"score"`
	// Stopped: a stop token ended it, not the length limit.
	Stopped bool `json:"-"`
	// Alternatives are beam search's other beams, best first.
	Alternatives []Caption `json:"-"`
}

// New wraps a model already in memory (a trainer's) as a Captioner without
// a CLIP encoder: it captions embeddings with the default decoding options.
func New(m *clipcap.Model, tok *tokenizer.Tokenizer, dev gotch.Device) *Captioner {
	return &Captioner{Model: m, Tok: tok, Device: dev}
}

// Load reads a model directory: weights, config, tokenizer files (from the
// directory, else the default tokenizer cache) and, when it can be found,
// the CLIP encoder the model was trained with.
//
// dir may also name a released model ("clipcap-coco"), which ResolveModel
// fetches and imports on first use.
func Load(dir string, opt Options) (*Captioner, error) {
	dir, err := ResolveModel(context.Background(), dir, opt.Resolve)
	if err != nil {
		return nil, err
	}
	m, cfg, stored, err := checkpoint.LoadStored(dir, opt.Device)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		if tok, err = tokenizer.LoadDefault(); err != nil {
			return nil, fmt.Errorf("model %s has no tokenizer files and the default ones are missing: %w", dir, err)
		}
	}
	c := &Captioner{Model: m, Config: cfg, Tok: tok, Device: opt.Device, RawText: opt.RawText, stored: stored}
	prec := opt.Precision
	if prec == "" {
		prec = cfg.Generation.Precision
	}
	clipPrec, err := clipPrecision(opt.CLIPPrecision, cfg.CLIP.Precision, prec)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	clipPath, err := resolveCLIP(dir, cfg.CLIP, opt.CLIP)
	if err != nil {
		return nil, err
	}
	if clipPath != "" {
		var copt clip.Options
		if opt.CLIP == "" && cfg.CLIP.Weights != "" {
			copt = clip.Options{Heads: cfg.CLIP.Heads, Act: clip.Activation(cfg.CLIP.Activation)}
		}
		copt.Precision = clipPrec
		enc, ccfg, err := clip.LoadWith(clipPath, opt.Device, copt)
		if err != nil {
			return nil, err
		}
		if ccfg.EmbedDim != m.Cfg.Mapper.ClipDim {
			return nil, fmt.Errorf("CLIP %s gives %d-dim embeddings, model %s expects %d", clipPath, ccfg.EmbedDim, dir, m.Cfg.Mapper.ClipDim)
		}
		c.CLIP = enc
		c.Pre = imageproc.NewPreprocessor(int(ccfg.InputResolution))
	}
	if err := c.setPrecision(prec); err != nil {
		return nil, fmt.Errorf("model %s: %w", dir, err)
	}
	if c.CLIP != nil && c.CLIP.Precision() != nn.FP32 {
		c.PrecisionNote = strings.TrimPrefix(c.PrecisionNote+"; CLIP computes in bf16", "; ")
	}
	return c, nil
}

// resolveCLIP finds the encoder's weights: an explicit override (path or
// OpenAI name, downloaded on first use), the model directory's own file, or
// the already downloaded weights of the named OpenAI model. "" means none
// was found: the model then captions embeddings only.
func resolveCLIP(dir string, info checkpoint.CLIPInfo, override string) (string, error) {
	if override == "-" {
		return "", nil
	}
	if override != "" {
		return ResolveCLIP(context.Background(), override, "", true)
	}
	if info.Weights != "" {
		p := filepath.Join(dir, info.Weights)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("model %s names CLIP weights %s: %w", dir, info.Weights, err)
		}
		return p, nil
	}
	if info.Name != "" {
		if p, err := ResolveCLIP(context.Background(), info.Name, "", false); err == nil {
			return p, nil
		}
	}
	return "", nil
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
	return c.FromEmbeddingsContext(context.Background(), emb, opt)
}

// FromEmbeddingsContext is FromEmbeddings that stops generating, between
// two tokens, once ctx is done (returning ctx.Err()).
func (c *Captioner) FromEmbeddingsContext(ctx context.Context, emb [][]float32, opt generate.Options) ([]Caption, error) {
	return c.FromEmbeddingsWith(ctx, emb, opt, generate.Hooks{})
}

// FromEmbeddingsWith is FromEmbeddingsContext with generation hooks:
// per-token callbacks (streaming) and per-row seeds.
func (c *Captioner) FromEmbeddingsWith(ctx context.Context, emb [][]float32, opt generate.Options, h generate.Hooks) ([]Caption, error) {
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
		// The error-returning call: a request path must not exit on a
		// CUDA out-of-memory. To frees x either way.
		if x, err = x.To(c.Device, true); err != nil {
			return nil, torchrt.Short(err)
		}
	}
	defer x.MustDrop()
	return c.fromTensor(ctx, x, opt, h)
}

func (c *Captioner) fromTensor(ctx context.Context, x *ts.Tensor, opt generate.Options, h generate.Hooks) ([]Caption, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var prefix *ts.Tensor
	var err error
	torchrt.NoGrad(func() { prefix, err = c.Model.Prefix(x, false) })
	if err != nil {
		return nil, err
	}
	defer prefix.MustDrop()
	res, err := generate.GenerateWith(ctx, c.Model.GPT, prefix, c.DecodeOptions(opt), h)
	if err != nil {
		return nil, err
	}
	out := make([]Caption, len(res))
	for i, r := range res {
		if out[i], err = c.decode(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *Captioner) decode(r generate.Result) (Caption, error) {
	text, err := c.Text(r.Tokens)
	if err != nil {
		return Caption{}, err
	}
	out := Caption{Text: text, Tokens: r.Tokens, Score: r.Score, Stopped: r.Stopped}
	for _, a := range r.Alternatives {
		ac, err := c.decode(a)
		if err != nil {
			return Caption{}, err
		}
		out.Alternatives = append(out.Alternatives, ac)
	}
	return out, nil
}

// Text decodes generated tokens into a caption, with Hugging Face decode's
// clean-up unless RawText is set.
func (c *Captioner) Text(tokens []int) (string, error) {
	text, err := c.Tok.Decode(tokens)
	if err != nil || c.RawText {
		return text, err
	}
	return tokenizer.CleanUpSpaces(text), nil
}

// Encode runs the CLIP encoder on preprocessed images (CHW float32 at the
// encoder's resolution) and returns the embeddings.
func (c *Captioner) Encode(pixels [][]float32) ([][]float32, error) {
	emb, err := c.encode(pixels)
	if err != nil || emb == nil {
		return nil, err
	}
	defer emb.MustDrop()
	cpu, err := emb.To(gotch.CPU, false)
	if err != nil {
		return nil, torchrt.Short(err)
	}
	defer cpu.MustDrop()
	size, err := cpu.Size()
	if err != nil || len(size) != 2 || size[0] != int64(len(pixels)) {
		return nil, fmt.Errorf("CLIP returned embeddings of shape %v for %d images (%v)", size, len(pixels), err)
	}
	d := int(size[1])
	vals := make([]float32, len(pixels)*d)
	if err := cpu.CopyData(vals, uint(len(vals))); err != nil {
		return nil, torchrt.Short(err)
	}
	out := make([][]float32, len(pixels))
	for i := range out {
		out[i] = vals[i*d : (i+1)*d]
	}
	return out, nil
}

// encode returns the embeddings of preprocessed images on the model's
// device (nil for no images).
func (c *Captioner) encode(pixels [][]float32) (*ts.Tensor, error) {
	if c.CLIP == nil {
		return nil, fmt.Errorf("this model has no CLIP encoder: give --clip, or caption --embedding files")
	}
	if len(pixels) == 0 {
		return nil, nil
	}
	flat := make([]float32, 0, len(pixels)*len(pixels[0]))
	for _, p := range pixels {
		flat = append(flat, p...)
	}
	c.clipMu.Lock()
	defer c.clipMu.Unlock()
	return EncodePixels(c.CLIP, flat)
}

// FromPixels captions preprocessed images in one batch. The embeddings stay
// on the device from CLIP to the prefix.
func (c *Captioner) FromPixels(pixels [][]float32, opt generate.Options) ([]Caption, error) {
	emb, err := c.encode(pixels)
	if err != nil || emb == nil {
		return nil, err
	}
	defer emb.MustDrop()
	return c.fromTensor(context.Background(), emb, opt, generate.Hooks{})
}

// FromFiles is the files -> captions pipeline: images decoded and
// preprocessed in parallel, captioned batch at a time (batch <= 0 means
// 32), emit called in input order with each file's index. The first
// unreadable image stops it with an error naming the file.
func (c *Captioner) FromFiles(ctx context.Context, files []string, batch int, opt generate.Options, emit func(index int, cp Caption) error) error {
	if c.CLIP == nil {
		return fmt.Errorf("this model has no CLIP encoder: give --clip PATH_OR_NAME (e.g. after clipcap download ViT-B/32)")
	}
	return eachPixelBatch(ctx, c.Pre, files, batch, func(first int, px []float32) error {
		c.clipMu.Lock()
		emb, err := EncodePixels(c.CLIP, px)
		c.clipMu.Unlock()
		if err != nil {
			return err
		}
		defer emb.MustDrop()
		caps, err := c.fromTensor(ctx, emb, opt, generate.Hooks{})
		if err != nil {
			return err
		}
		for i, cp := range caps {
			if err := emit(first+i, cp); err != nil {
				return err
			}
		}
		return nil
	})
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

// FromNpy captions the rows of a float .npy of CLIP embeddings ([N, D] or
// [D]) batch at a time (batch <= 0 means 32), calling emit in row order.
func (c *Captioner) FromNpy(path string, batch int, opt generate.Options, emit func(row int, cp Caption) error) error {
	rows, err := readEmbeddings(path)
	if err != nil {
		return err
	}
	if batch <= 0 {
		batch = 32
	}
	for start := 0; start < len(rows); start += batch {
		end := min(start+batch, len(rows))
		caps, err := c.FromEmbeddings(rows[start:end], opt)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for i, cp := range caps {
			if err := emit(start+i, cp); err != nil {
				return err
			}
		}
	}
	return nil
}

// readEmbeddings reads a float .npy of shape [N, D] (or [D]) as rows.
func readEmbeddings(path string) ([][]float32, error) {
	rt, err := tensorfile.ReadNpy(path)
	if err != nil {
		return nil, err
	}
	vals, err := rt.Float32()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var n, d int
	switch len(rt.Shape) {
	case 1:
		n, d = 1, int(rt.Shape[0])
	case 2:
		n, d = int(rt.Shape[0]), int(rt.Shape[1])
	default:
		return nil, fmt.Errorf("%s: embeddings must be [N, D], got shape %v", path, rt.Shape)
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = vals[i*d : (i+1)*d]
	}
	return rows, nil
}
