package clipcap_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
)

// The reference values come from testdata/gen_reference.py (PyTorch,
// official ClipCap and HuggingFace GPT-2 semantics, tiny random models).

func tinyGPT2(t *testing.T) *gpt2.Config {
	t.Helper()
	c, err := checkpoint.ReadGPT2Config("testdata/gpt2_config.json")
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func loadOfficial(t *testing.T, kind string) *clipcap.Model {
	t.Helper()
	m, err := checkpoint.LoadOfficial(filepath.Join("testdata", "official_"+kind+".pt"), checkpoint.OfficialOptions{GPT2: tinyGPT2(t)}, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type expected struct {
	t  *testing.T
	tf *tensorfile.TorchFile
}

func openExpected(t *testing.T, kind string) expected {
	tf, err := tensorfile.OpenTorch(filepath.Join("testdata", "expected_"+kind+".pt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tf.Close() })
	return expected{t, tf}
}

func (e expected) tensor(name string) *ts.Tensor {
	rt, err := e.tf.Tensor(name)
	if err != nil {
		e.t.Fatal(err)
	}
	x, err := tensorfile.ToTorch(name, rt, gotch.CPU)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

func maxAbsDiff(t *testing.T, a, b *ts.Tensor) float64 {
	t.Helper()
	if sa, sb := a.MustSize(), b.MustSize(); len(sa) != len(sb) {
		t.Fatalf("shapes %v and %v differ", sa, sb)
	}
	d := a.MustSub(b, false).MustAbs(true).MustMax(true)
	defer d.MustDrop()
	return d.Float64Values()[0]
}

func TestForwardLossGradParity(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		t.Run(kind, func(t *testing.T) {
			m := loadOfficial(t, kind)
			e := openExpected(t, kind)
			clip, tokens, mask := e.tensor("clip"), e.tensor("tokens"), e.tensor("token_mask")

			logits, err := m.Forward(clip, tokens, mask, false)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, logits, e.tensor("logits")); d > 1e-4 {
				t.Errorf("logits differ by %g", d)
			}
			loss, err := m.Loss(clip, tokens, mask, false)
			if err != nil {
				t.Fatal(err)
			}
			want := e.tensor("loss").Float64Values()[0]
			if got := loss.Float64Values()[0]; math.Abs(got-want) > 1e-5 {
				t.Errorf("loss %v, want %v", got, want)
			}
			loss.MustBackward()
			checked := 0
			for _, p := range m.Store.All() {
				grad := p.Tensor.MustGrad(false)
				frozen := kind == "transformer" && strings.HasPrefix(p.Name, "gpt.")
				if frozen {
					if grad.MustDefined() {
						t.Errorf("frozen %s has a gradient", p.Name)
					}
					continue
				}
				if d := maxAbsDiff(t, grad, e.tensor("grad."+p.Name)); d > 1e-4 {
					t.Errorf("grad of %s differs by %g", p.Name, d)
				}
				checked++
			}
			if checked < 4 {
				t.Fatalf("only %d gradients checked", checked)
			}
		})
	}
}

type genCase struct {
	Image     int     `json:"image"`
	Stop      int     `json:"stop"`
	Beam      []int   `json:"beam"`
	BeamScore float64 `json:"beam_score"`
	Greedy    []int   `json:"greedy"`
}

func TestGenerationMatchesPredictPy(t *testing.T) {
	for _, kind := range []string{"mlp", "transformer"} {
		t.Run(kind, func(t *testing.T) {
			m := loadOfficial(t, kind)
			e := openExpected(t, kind)
			var cases []genCase
			data, err := os.ReadFile(filepath.Join("testdata", "generate_"+kind+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &cases); err != nil {
				t.Fatal(err)
			}
			var prefix *ts.Tensor
			torchrt.NoGrad(func() { prefix, err = m.Prefix(e.tensor("gen_clip"), false) })
			if err != nil {
				t.Fatal(err)
			}
			// Group by stop token so every image of a group decodes in one batch.
			byStop := map[int][]genCase{}
			for _, c := range cases {
				byStop[c.Stop] = append(byStop[c.Stop], c)
			}
			for stop, group := range byStop {
				idx := make([]int64, len(group))
				for i, c := range group {
					idx[i] = int64(c.Image)
				}
				rows := prefix.MustIndexSelect(0, ts.MustOfSlice(idx), false)
				for _, noCache := range []bool{false, true} {
					for _, strat := range []generate.Strategy{generate.Beam, generate.Greedy} {
						res, err := generate.Generate(m.GPT, rows, generate.Options{Strategy: strat, StopTokens: []int{stop}, NoCache: noCache})
						if err != nil {
							t.Fatal(err)
						}
						for i, c := range group {
							want := c.Greedy
							if strat == generate.Beam {
								want = c.Beam
								if math.Abs(res[i].Score-c.BeamScore) > 1e-4 {
									t.Errorf("stop %d image %d beam score %v, want %v", stop, c.Image, res[i].Score, c.BeamScore)
								}
							}
							if !equalInts(res[i].Tokens, want) {
								t.Errorf("stop %d image %d %s (noCache=%v):\n got %v\nwant %v", stop, c.Image, strat, noCache, res[i].Tokens, want)
							}
						}
					}
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
