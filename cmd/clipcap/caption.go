package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

const captionSummary = "caption images or CLIP embeddings with a model directory"

func init() {
	register(command{name: "caption", summary: captionSummary, run: runCaption})
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
		return o, fmt.Errorf("--%w", err)
	}
	if o.StopTokens, err = generate.ParseStopTokens(d.stop); err != nil {
		return o, fmt.Errorf("--%w", err)
	}
	return o, nil
}

func runCaption(args []string) error {
	fs := newFlags("caption", "--model DIR (--image F... | --embedding F.npy) [flags]", captionSummary)
	model := fs.String("model", "", "model directory, or a released model: clipcap-coco, clipcap-conceptual, clipcap-coco-transformer")
	var images stringList
	fs.Var(&images, "image", "image file (repeatable; also positional arguments)")
	embedding := fs.String("embedding", "", ".npy file of CLIP embeddings [N, D], one caption per row")
	clipPath := fs.String("clip", "", "CLIP weights or OpenAI model name (default: the model directory's)")
	asJSON := fs.Bool("json", false, "print one JSON object per input: {\"caption\", \"tokens\", ...}")
	batch := fs.Int("batch", 16, "inputs per forward pass")
	device := fs.String("device", "cpu", "cpu, cuda, cuda:N or auto")
	var dec decodeFlags
	dec.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	images = append(images, fs.Args()...)
	if *model == "" {
		return fmt.Errorf("--model is required")
	}
	if (len(images) == 0) == (*embedding == "") {
		return fmt.Errorf("give either --image files or --embedding F.npy")
	}
	opt, err := dec.options()
	if err != nil {
		return err
	}
	dev, err := torchrt.ParseDevice(*device)
	if err != nil {
		return err
	}
	clipOpt := *clipPath
	if *embedding != "" && clipOpt == "" {
		clipOpt = "-" // embeddings need no encoder
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := caption.Load(*model, caption.Options{Device: dev, CLIP: clipOpt})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	emit := func(label string, index int, cp caption.Caption) error {
		if *asJSON {
			line, err := json.Marshal(struct {
				Input   string  `json:"input"`
				Index   int     `json:"index"`
				Caption string  `json:"caption"`
				Tokens  []int   `json:"tokens"`
				Score   float64 `json:"score"`
			}{label, index, cp.Text, cp.Tokens, cp.Score})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s\n", line)
			return err
		}
		if len(images) > 1 {
			_, err := fmt.Fprintf(out, "%s\t%s\n", label, cp.Text)
			return err
		}
		_, err := fmt.Fprintln(out, cp.Text)
		return err
	}
	if *embedding != "" {
		rows, err := readEmbeddings(*embedding)
		if err != nil {
			return err
		}
		for start := 0; start < len(rows); start += *batch {
			end := min(start+*batch, len(rows))
			caps, err := c.FromEmbeddings(rows[start:end], opt)
			if err != nil {
				return fmt.Errorf("%s: %w", *embedding, err)
			}
			for i, cp := range caps {
				if err := emit(*embedding, start+i, cp); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return c.FromFiles(ctx, images, *batch, opt, func(i int, cp caption.Caption) error {
		return emit(images[i], i, cp)
	})
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
