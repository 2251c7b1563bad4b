package main

import (
	"flag"
	"fmt"
	"runtime"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

// Flags shared by several commands, defined once.

// deviceFlag is every command's --device: one default, one help text.
func deviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "auto", "cpu, cuda, cuda:N, or auto: the first CUDA device when this libtorch has one, else the CPU")
}

// modelFlags name a model directory and where it runs: caption, live and
// serve load their captioner through them.
type modelFlags struct {
	model, clip, device, precision *string
	rawText                        *bool
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	m.model = fs.String("model", "", "model directory, or a released model (clipcap-coco, clipcap-conceptual, clipcap-coco-transformer; downloaded on first use) (required)")
	m.clip = fs.String("clip", "", "CLIP weights file, Hugging Face / OpenCLIP directory or OpenAI model name overriding the model directory's (names are downloaded on first use)")
	m.device = deviceFlag(fs)
	m.rawText = rawTextFlag(fs)
	m.precision = precisionFlag(fs)
}

// rawTextFlag is --raw-text: captions without Hugging Face decode's clean-up.
func rawTextFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("raw-text", false, "captions exactly as the tokens spell them, without Hugging Face decode's clean-up (\" .\" -> \".\", \" 's\" -> \"'s\", ...)")
}

// loadCaptioner loads the model directory. clipOverride, when not "", wins
// over --clip ("-": no encoder). libtorch's grad mode is per OS thread, so
// loading stays on one; the caller keeps the thread locked while it runs
// the model (hence unlock is returned).
func (m *modelFlags) loadCaptioner(clipOverride string) (c *caption.Captioner, unlock func(), err error) {
	if *m.model == "" {
		return nil, nil, usagef("--model is required")
	}
	dev, err := torchrt.ParseDevice(*m.device)
	if err != nil {
		return nil, nil, usageError{err}
	}
	clipArg := *m.clip
	if clipOverride != "" && clipArg == "" {
		clipArg = clipOverride
	}
	runtime.LockOSThread()
	c, err = caption.Load(*m.model, caption.Options{Device: dev, CLIP: clipArg, RawText: *m.rawText, Precision: *m.precision})
	if err != nil {
		runtime.UnlockOSThread()
		return nil, nil, err
	}
	notePrecision(c)
	return c, runtime.UnlockOSThread, nil
}

// decodeFlags are the generation flags shared by caption, eval, live and serve.
type decodeFlags struct {
	strategy    string
	beam        int
	maxTokens   int
	temperature float64
	topK        int
	topP        float64
	seed        int64
	stop        string
}

func (d *decodeFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
	Int64Var(*int64, string, int64, string)
}) {
	fs.StringVar(&d.strategy, "strategy", "", "greedy, beam or sample (default: the model's, normally beam)")
	fs.IntVar(&d.beam, "beam", 0, "beam size (default 5)")
	fs.IntVar(&d.maxTokens, "max-tokens", 0, "most tokens to generate (default 67)")
	fs.Float64Var(&d.temperature, "temperature", 0, "softmax temperature (default 1)")
	fs.IntVar(&d.topK, "top-k", 0, "sampling: keep the k most likely tokens")
	fs.Float64Var(&d.topP, "top-p", 0, "sampling: keep the smallest set with this probability mass")
	fs.Int64Var(&d.seed, "seed", 0, "sampling seed")
	fs.StringVar(&d.stop, "stop", "", "comma-separated stop token ids (default 13, \".\"); \"none\" to disable")
}

func (d *decodeFlags) options() (generate.Options, error) {
	o := generate.Options{Strategy: generate.Strategy(d.strategy), BeamSize: d.beam, MaxTokens: d.maxTokens,
		Temperature: d.temperature, TopK: d.topK, TopP: d.topP, Seed: d.seed}
	var err error
	if o.Strategy, err = generate.ParseStrategy(d.strategy); err != nil {
		return o, usageError{fmt.Errorf("--%w", err)}
	}
	if o.StopTokens, err = generate.ParseStopTokens(d.stop); err != nil {
		return o, usageError{fmt.Errorf("--%w", err)}
	}
	return o, nil
}

// stringList is a repeatable string flag (--image a --image b).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
