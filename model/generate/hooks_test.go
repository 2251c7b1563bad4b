package generate_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// smallGPT2 is a seeded random 2-layer GPT-2 with a 97-token vocab and a
// [rows, 3, 32] random prefix.
func smallGPT2(t *testing.T, rows int64) (*gpt2.Model, *ts.Tensor) {
	t.Helper()
	torchrt.ManualSeed(7)
	cfg := gpt2.Presets["gpt2"]
	cfg.NEmbd, cfg.NLayer, cfg.NHead, cfg.NPositions, cfg.VocabSize = 32, 2, 2, 48, 97
	store := nn.NewStore(gotch.CPU)
	m, err := gpt2.New(store.Root(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	store.SetTrainable("", false)
	p := ts.MustRandn([]int64{rows, 3, 32}, gotch.Float, gotch.CPU)
	t.Cleanup(func() { p.MustDrop() })
	return m, p
}

// OnToken sees every row's tokens in order, exactly the returned ones, for
// each strategy (beam: the best beam's, after the search).
func TestOnTokenStreamsTheResult(t *testing.T) {
	m, p := smallGPT2(t, 3)
	for _, opt := range []generate.Options{
		{Strategy: generate.Greedy, MaxTokens: 9, StopTokens: []int{5}},
		{Strategy: generate.Sample, MaxTokens: 9, StopTokens: []int{5}, Seed: 3, TopP: 0.9},
		{Strategy: generate.Beam, BeamSize: 3, MaxTokens: 9, StopTokens: []int{5}},
	} {
		seen := make([][]int, 3)
		res, err := generate.GenerateWith(context.Background(), m, p, opt, generate.Hooks{OnToken: func(row, tok int) {
			seen[row] = append(seen[row], tok)
		}})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := generate.Generate(m, p, opt)
		if err != nil {
			t.Fatal(err)
		}
		for r := range res {
			if !reflect.DeepEqual(seen[r], res[r].Tokens) {
				t.Errorf("%s row %d: OnToken saw %v, result %v", opt.Strategy, r, seen[r], res[r].Tokens)
			}
			if !reflect.DeepEqual(res[r].Tokens, plain[r].Tokens) {
				t.Errorf("%s row %d: hooks changed the caption %v -> %v", opt.Strategy, r, plain[r].Tokens, res[r].Tokens)
			}
		}
	}
}

// Seeds give a row the sample it gets alone with that seed, whatever its
// position in the batch.
func TestSeedsPerRow(t *testing.T) {
	m, p := smallGPT2(t, 3)
	opt := generate.Options{Strategy: generate.Sample, MaxTokens: 10, StopTokens: []int{}, Temperature: 1.5}
	seeds := []int64{40, 11, 40}
	res, err := generate.GenerateWith(context.Background(), m, p, opt, generate.Hooks{Seeds: seeds})
	if err != nil {
		t.Fatal(err)
	}
	for r, s := range seeds {
		row := p.MustNarrow(0, int64(r), 1, false)
		o := opt
		o.Seed = s
		alone, err := generate.Generate(m, row, o)
		row.MustDrop()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(alone[0].Tokens, res[r].Tokens) {
			t.Errorf("row %d seed %d: batched %v, alone %v", r, s, res[r].Tokens, alone[0].Tokens)
		}
	}
	if _, err := generate.GenerateWith(context.Background(), m, p, opt, generate.Hooks{Seeds: seeds[:2]}); err == nil {
		t.Error("2 seeds for 3 rows: no error")
	}
}

// Beam search's alternatives are the other beams, distinct and ranked.
func TestBeamAlternatives(t *testing.T) {
	m, p := smallGPT2(t, 2)
	res, err := generate.Generate(m, p, generate.Options{Strategy: generate.Beam, BeamSize: 4, MaxTokens: 6, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	for r, best := range res {
		if len(best.Alternatives) != 3 {
			t.Fatalf("row %d: %d alternatives, want 3", r, len(best.Alternatives))
		}
		all := append([]generate.Result{best}, best.Alternatives...)
		seen := map[string]bool{}
		for i, a := range all {
			if i > 0 && a.Score > all[i-1].Score {
				t.Errorf("row %d: beam %d scores %g above beam %d's %g", r, i, a.Score, i-1, all[i-1].Score)
			}
			key := fmt.Sprint(a.Tokens)
			if seen[key] {
				t.Errorf("row %d: beam %d repeats %v", r, i, a.Tokens)
			}
			seen[key] = true
		}
	}
}
