package imageproc

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// Input is one image to preprocess: the file at Name, or Data when it is
// non-nil (Name then only labels errors).
type Input struct {
	Name string
	Data []byte
}

// Result is the outcome for the input at Index: Pixels (CHW float32,
// 3*NPx*NPx) or Err, which names the input and wraps one of the package's
// Err* values when the input itself was bad.
type Result struct {
	Index  int
	Name   string
	Pixels []float32
	Err    error
}

// Pipeline decodes and preprocesses many inputs on several goroutines.
// A bad input yields a Result with Err and does not stop the others.
type Pipeline struct {
	Pre     *Preprocessor
	Workers int // 0 means runtime.GOMAXPROCS(0)
}

func (pl *Pipeline) workers() int {
	if pl.Workers > 0 {
		return pl.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (pl *Pipeline) process(in Input) ([]float32, error) {
	var im *Image
	var err error
	if in.Data != nil {
		im, err = pl.Pre.Decoder.Decode(in.Data, in.Name)
	} else {
		im, err = pl.Pre.Decoder.DecodeFile(in.Name)
	}
	if err != nil {
		return nil, err
	}
	px, err := pl.Pre.Preprocess(im)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	return px, nil
}

// Each processes inputs and calls fn with each Result in input order, from
// the calling goroutine. At most about 2*Workers results are held at once,
// so memory stays bounded on long lists. It stops early when ctx is
// cancelled (returning ctx.Err()) or when fn returns an error (returning it).
func (pl *Pipeline) Each(ctx context.Context, inputs []Input, fn func(Result) error) error {
	if pl.Pre == nil {
		return fmt.Errorf("imageproc: Pipeline without a Preprocessor")
	}
	ctx, cancel := context.WithCancel(ctx)
	nw := min(pl.workers(), max(len(inputs), 1))
	window := 2 * nw
	// One buffered channel per input carries its result, so workers never
	// block; the tokens bound how many results exist before delivery.
	slots := make([]chan Result, len(inputs))
	for i := range slots {
		slots[i] = make(chan Result, 1)
	}
	tokens := make(chan struct{}, window)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < nw; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				px, err := pl.process(inputs[i])
				slots[i] <- Result{Index: i, Name: inputs[i].Name, Pixels: px, Err: err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range inputs {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Cancel first so the feeder and idle workers exit, then wait for them.
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range inputs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r Result
		select {
		case r = <-slots[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-tokens
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Run processes all inputs and returns their Results in input order.
func (pl *Pipeline) Run(ctx context.Context, inputs []Input) ([]Result, error) {
	out := make([]Result, 0, len(inputs))
	err := pl.Each(ctx, inputs, func(r Result) error {
		out = append(out, r)
		return nil
	})
	return out, err
}
