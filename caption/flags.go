package caption

import (
	"flag"
	"fmt"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

// Command-line flags of the commands that caption (caption, eval, live,
// serve), defined once here so their names, defaults and help agree.

// LoadFlags name a model directory and how it runs: Load's arguments as
// flags (--device and --precision as typed, parsed at load).
type LoadFlags struct {
	Model, CLIP, Device, Precision string
	RawText                        bool
}

// RegisterFlags defines --model, --clip, --device, --raw-text and --precision.
func (f *LoadFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Model, "model", "", "model directory, or a released model (clipcap-coco, clipcap-conceptual, clipcap-coco-transformer; downloaded on first use) (required)")
	fs.StringVar(&f.CLIP, "clip", "", "CLIP weights file, Hugging Face / OpenCLIP directory or OpenAI model name overriding the model directory's (names are downloaded on first use)")
	torchrt.DeviceVar(fs, &f.Device)
	RawTextVar(fs, &f.RawText)
	fs.StringVar(&f.Precision, "precision", "", "GPT-2 and mapper weights for inference: fp32, bf16 or int8\n(default: the model directory's generation.precision, else fp32)")
}

// RawTextVar defines --raw-text: captions without Hugging Face decode's
// clean-up (Options.RawText).
func RawTextVar(fs *flag.FlagSet, p *bool) {
	fs.BoolVar(p, "raw-text", false, "captions exactly as the tokens spell them, without Hugging Face decode's clean-up (\" .\" -> \".\", \" 's\" -> \"'s\", ...)")
}

// DecodeFlags are the generation flags; zero values leave the model's
// defaults (Captioner.DecodeOptions).
type DecodeFlags struct {
	Strategy    string
	Beam        int
	MaxTokens   int
	Temperature float64
	TopK        int
	TopP        float64
	Seed        int64
	Stop        string
}

// RegisterFlags defines --strategy, --beam, --max-tokens, --temperature,
// --top-k, --top-p, --seed and --stop.
func (d *DecodeFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&d.Strategy, "strategy", "", "greedy, beam or sample (default: the model's, normally beam)")
	fs.IntVar(&d.Beam, "beam", 0, "beam size (default 5)")
	fs.IntVar(&d.MaxTokens, "max-tokens", 0, "most tokens to generate (default 67)")
	fs.Float64Var(&d.Temperature, "temperature", 0, "softmax temperature (default 1)")
	fs.IntVar(&d.TopK, "top-k", 0, "sampling: keep the k most likely tokens")
	fs.Float64Var(&d.TopP, "top-p", 0, "sampling: keep the smallest set with this probability mass")
	fs.Int64Var(&d.Seed, "seed", 0, "sampling seed")
	fs.StringVar(&d.Stop, "stop", "", "comma-separated stop token ids (default 13, \".\"); \"none\" to disable")
}

// Options returns the generate.Options the flags describe; an error names
// the flag (--strategy, --stop).
func (d *DecodeFlags) Options() (generate.Options, error) {
	o := generate.Options{BeamSize: d.Beam, MaxTokens: d.MaxTokens, Temperature: d.Temperature, TopK: d.TopK, TopP: d.TopP, Seed: d.Seed}
	var err error
	if o.Strategy, err = generate.ParseStrategy(d.Strategy); err != nil {
		return o, fmt.Errorf("--%w", err)
	}
	if o.StopTokens, err = generate.ParseStopTokens(d.Stop); err != nil {
		return o, fmt.Errorf("--%w", err)
	}
	return o, nil
}

// ImportFlags are `clipcap import`'s: ImportOptions plus
// --no-normalize-prefix, which with --normalize-prefix says whether the
// model's normalisation was stated (NormalizeStated).
type ImportFlags struct {
	ImportOptions
	NoNormalizePrefix bool
}

// RegisterFlags defines import's flags on fs, with their defaults.
func (f *ImportFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.From, "from", "", "official (CLIP_prefix_caption checkpoint), hf-gpt2, openai-clip or hf-clip")
	fs.StringVar(&f.Checkpoint, "checkpoint", "", "the published weights file (or HF directory for hf-gpt2)")
	fs.StringVar(&f.Out, "out", "", "model directory to write (for openai-clip / hf-clip: an existing model directory to add the encoder to)")
	fs.StringVar(&f.GPT2Config, "gpt2-config", "", "HuggingFace config.json of the GPT-2 (default: gpt2 small; sizes read from the weights)")
	fs.StringVar(&f.CLIPFile, "clip", "", "official/hf-gpt2: CLIP weights to put in the model directory so caption --image works alone")
	fs.StringVar(&f.CLIPName, "clip-name", "", "name of the CLIP model the mapper was trained on (default ViT-B/32 for 512-dim, RN50x4 for 640-dim)")
	fs.BoolVar(&f.NormalizePrefix, "normalize-prefix", false, "official: the model was trained on L2-normalized CLIP embeddings (the transformer notebook does this; predict.py does not)")
	fs.BoolVar(&f.NoNormalizePrefix, "no-normalize-prefix", false, "official: the model was trained on raw CLIP embeddings (predict.py's way); silences the transformer variant's warning")
	fs.StringVar(&f.MappingType, "mapping-type", "mlp", "hf-gpt2: mapper to create, mlp or transformer")
	fs.Int64Var(&f.PrefixLength, "prefix-length", 10, "hf-gpt2: prefix length")
	fs.Int64Var(&f.ClipLength, "prefix-length-clip", 10, "hf-gpt2: transformer mapper clip length")
	fs.Int64Var(&f.NumLayers, "num-layers", 8, "hf-gpt2: transformer mapper layers")
	fs.Int64Var(&f.ClipDim, "clip-dim", 512, "hf-gpt2: CLIP embedding width")
}

// Parsed returns the ImportOptions the parsed flags describe.
func (f *ImportFlags) Parsed() ImportOptions {
	o := f.ImportOptions
	o.NormalizeStated = f.NormalizePrefix || f.NoNormalizePrefix
	return o
}
