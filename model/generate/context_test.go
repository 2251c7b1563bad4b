package generate_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/model/generate"
	"github.com/clipcap/clipcap/model/gpt2"
	"github.com/clipcap/clipcap/model/nn"
)

// stepCtx is a context that is done after its Err has been asked n times:
// it counts decoding steps.
type stepCtx struct {
	context.Context
	n, asked atomic.Int64
}

func (c *stepCtx) Err() error {
	if c.asked.Add(1) > c.n.Load() {
		return context.Canceled
	}
	return nil
}

// Generation checks its context between steps: a cancelled request stops
// after the step in progress instead of running to max_tokens.
func TestGenerateContextStopsBetweenSteps(t *testing.T) {
	cfg := gpt2.Config{VocabSize: 40, NPositions: 80, NEmbd: 16, NLayer: 1, NHead: 2, Activation: "gelu_new",
		LayerNormEps: 1e-5, InitializerRange: 0.5}
	m, err := gpt2.New(nn.NewStore(gotch.CPU).Root(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := ts.MustRandn([]int64{2, 3, 16}, gotch.Float, gotch.CPU)
	defer prefix.MustDrop()
	for _, st := range []generate.Strategy{generate.Greedy, generate.Sample, generate.Beam} {
		// No stop token: without the check every caption runs 60 steps.
		opt := generate.Options{Strategy: st, BeamSize: 3, MaxTokens: 60, StopTokens: []int{}}
		full, err := generate.GenerateContext(context.Background(), m, prefix, opt)
		if err != nil || len(full) != 2 || len(full[0].Tokens) != 60 {
			t.Fatalf("%s: %v, %d results", st, err, len(full))
		}
		if plain, _ := generate.Generate(m, prefix, opt); !reflect.DeepEqual(plain, full) {
			t.Errorf("%s: Generate and GenerateContext differ", st)
		}
		ctx := &stepCtx{Context: context.Background()}
		ctx.n.Store(5)
		if res, err := generate.GenerateContext(ctx, m, prefix, opt); !errors.Is(err, context.Canceled) || res != nil {
			t.Errorf("%s: cancelled after 5 steps: %v, %v", st, res, err)
		}
		if a := ctx.asked.Load(); a != 6 {
			t.Errorf("%s: the context was asked %d times, want 6 (once per step)", st, a)
		}
		dead, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		<-dead.Done()
		if _, err := generate.GenerateContext(dead, m, prefix, opt); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: expired context: %v", st, err)
		}
		cancel()
	}
}
