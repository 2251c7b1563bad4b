// Package randmodel writes self-contained model directories with seeded
// random weights — a CLIP ViT image tower, a ClipCap mapper + GPT-2 and a
// byte-level tokenizer — for the live and serve tests and benchmarks. The
// captions such a model writes are gibberish, but they are a deterministic
// function of the pixels, which is what the tests compare.
package randmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/tokenizer/pretokenizer"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clip"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/mapper"
	"github.com/clipcap/clipcap/model/nn"
)

// CLIPFile is the encoder's file name inside the directories written here.
const CLIPFile = "clip.safetensors"

// Spec sizes a model. Vocab counts the tokenizer's ids: 257 is the byte
// tokens plus <|endoftext|>; more adds synthetic merges (GPT-2's 50257 for
// real-size benchmarks).
type Spec struct {
	CLIP         clip.Config
	GPT2         gpt2.Config
	PrefixLength int64
	Vocab        int
	Generation   generate.Options
	Seed         int64
}

// Tiny is a model small enough for unit tests on two cores: a one-block
// 64-wide ViT on 32x32 images and a two-layer 32-wide GPT-2.
func Tiny() Spec {
	g := gpt2.Presets["gpt2"]
	g.NEmbd, g.NLayer, g.NHead, g.NPositions, g.VocabSize = 32, 2, 2, 64, 257
	return Spec{
		CLIP:         clip.Config{Kind: clip.ViT, Width: 64, Layers: 1, PatchSize: 16, InputResolution: 32, EmbedDim: 32, Heads: 1},
		GPT2:         g,
		PrefixLength: 4,
		Vocab:        257,
		Generation:   generate.Options{Strategy: generate.Greedy, MaxTokens: 12},
		Seed:         1,
	}
}

// Small is big enough that one forward pass costs more than its overheads,
// so batching requests shows (the load test): a 4-block 256-wide ViT on
// 64x64 images and a 4-layer 256-wide GPT-2 with a 4096-token vocab.
func Small() Spec {
	g := gpt2.Presets["gpt2"]
	g.NEmbd, g.NLayer, g.NHead, g.NPositions, g.VocabSize = 256, 4, 4, 128, 4096
	return Spec{
		CLIP:         clip.Config{Kind: clip.ViT, Width: 256, Layers: 4, PatchSize: 16, InputResolution: 64, EmbedDim: 128, Heads: 4},
		GPT2:         g,
		PrefixLength: 10,
		Vocab:        4096,
		Generation:   generate.Options{Strategy: generate.Greedy, MaxTokens: 16, StopTokens: []int{}},
		Seed:         2,
	}
}

// Real is ViT-B/32 + GPT-2 small with a 10-token MLP prefix (the paper's
// COCO MLP model), random weights.
func Real() Spec {
	c, _ := clip.KnownConfig("ViT-B/32")
	return Spec{CLIP: c, GPT2: gpt2.Presets["gpt2"], PrefixLength: 10, Vocab: 50257, Seed: 3,
		Generation: generate.Options{Strategy: generate.Beam, BeamSize: 5, MaxTokens: 67}}
}

// Write creates dir with config.yaml, model.safetensors, the CLIP encoder
// (CLIPFile), vocab.json and merges.txt.
func Write(dir string, s Spec) error {
	// libtorch's grad mode is per OS thread and ts.NoGrad switches it
	// around calls; pinning the goroutine keeps switch and call on one
	// thread (else an in-place weight copy can run with grad enabled).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if s.GPT2.VocabSize != int64(s.Vocab) {
		return fmt.Errorf("randmodel: GPT-2 vocab %d differs from the tokenizer's %d", s.GPT2.VocabSize, s.Vocab)
	}
	if s.CLIP.Heads != s.CLIP.Width/64 {
		// clip.Load infers heads as width/64, as openai's build_model does.
		return fmt.Errorf("randmodel: CLIP heads must be width/64 = %d to load back", s.CLIP.Width/64)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(s.Seed))
	cfg := clipcap.Config{
		Mapper: mapper.Config{Kind: mapper.MLP, ClipDim: s.CLIP.EmbedDim, EmbedDim: s.GPT2.NEmbd, PrefixLength: s.PrefixLength},
		GPT2:   s.GPT2,
	}
	m, err := clipcap.New(cfg, gotch.CPU)
	if err != nil {
		return err
	}
	if err := reseed(m.Store, rng); err != nil {
		return err
	}
	dc := checkpoint.NewDirConfig(m, "random-vit")
	dc.CLIP.Weights, dc.CLIP.Random = CLIPFile, true
	dc.Generation = s.Generation
	if err := checkpoint.Save(dir, m, dc, ""); err != nil {
		return err
	}
	store := nn.NewStore(gotch.CPU)
	if _, err := clip.New(store.Root().Sub("visual"), gotch.CPU, s.CLIP); err != nil {
		return err
	}
	if err := reseed(store, rng); err != nil {
		return err
	}
	sd, err := store.StateDict()
	if err != nil {
		return err
	}
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, CLIPFile), sd, nil); err != nil {
		return err
	}
	return writeTokenizer(dir, s.Vocab)
}

// reseed replaces every randomly initialized parameter by seeded normal
// values, because libtorch's initializers are not seeded here and tests want
// the same model every run. Constant parameters (LayerNorm weights, biases)
// are kept. The scale 1/sqrt(last dim) is larger than GPT-2's 0.02 so that
// the prefix, hence the image, visibly steers the random GPT-2.
func reseed(store *nn.Store, rng *rand.Rand) error {
	for _, p := range store.All() {
		rt, err := tensorfile.FromTorch(p.Tensor)
		if err != nil {
			return err
		}
		vals, err := rt.Float32()
		if err != nil {
			return err
		}
		constant := true
		for _, v := range vals {
			if v != vals[0] {
				constant = false
				break
			}
		}
		if constant || len(rt.Shape) == 0 {
			continue
		}
		std := 1 / math.Sqrt(float64(rt.Shape[len(rt.Shape)-1]))
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * std)
		}
		t, err := tensorfile.ToTorch(p.Name, tensorfile.RawTensor{Dtype: tensorfile.F32, Shape: rt.Shape, Data: f32Bytes(vals)}, gotch.CPU)
		if err != nil {
			return err
		}
		err = store.Assign(p.Name, t)
		t.MustDrop()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeTokenizer writes a GPT-2 style byte-level vocab of n ids: the 256
// byte tokens in GPT-2's order, synthetic two-byte merges, <|endoftext|>.
func writeTokenizer(dir string, n int) error {
	if n < 257 {
		return fmt.Errorf("randmodel: vocab %d is below the 257 byte tokens + <|endoftext|>", n)
	}
	chars := pretokenizer.GenerateBytesChar()
	order := byteOrder()
	vocab := make(map[string]int, n)
	for id, b := range order {
		vocab[chars[b]] = id
	}
	merges := []string{"#version: 0.2"}
	// Pairs of byte tokens are all distinct two-character tokens, enough
	// for 256*256 merges.
	for i := 0; len(vocab) < n-1; i++ {
		a, b := chars[order[i/256]], chars[order[i%256]]
		vocab[a+b] = len(vocab)
		merges = append(merges, a+" "+b)
	}
	vocab["<|endoftext|>"] = len(vocab)
	vj, err := json.Marshal(vocab)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.VocabFile), vj, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, checkpoint.MergesFile), []byte(strings.Join(merges, "\n")+"\n"), 0o644)
}

// byteOrder is GPT-2's id order of the 256 bytes: printable ones first.
func byteOrder() []byte {
	var out, rest []byte
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			out = append(out, byte(b))
		} else {
			rest = append(rest, byte(b))
		}
	}
	return append(out, rest...)
}

// f32Bytes is little-endian float32 data.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
