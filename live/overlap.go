package live

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// consumeOverlapped pipelines real-time captioning: a second goroutine
// encodes the next frame with CLIP while this one decodes the current
// frame with GPT-2 (the Captioner lets one call of each run together).
// Starting the next encoding as soon as a decode starts would caption a
// frame that then waits for the decoder; instead the encoder starts when
// the decode has about one encoding time left (running means of both), so
// it takes the freshest frame and its embedding is ready as the decoder
// frees up: latency stays encode + decode, the rate approaches 1/decode.
func (r *runner) consumeOverlapped(slot *latest) (err error) {
	type encoded struct {
		f    *Frame
		emb  [][]float32
		took time.Duration
		err  error
	}
	out := make(chan encoded)
	startAt := make(chan time.Time, 1)
	startAt <- time.Time{} // the first frame: at once
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		if err != nil {
			r.cancel() // ends the reader, which closes the slot the encoder may wait on
		}
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		// libtorch's grad mode is per OS thread (see Run).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var next time.Duration
		for {
			var at time.Time
			select {
			case at = <-startAt:
			case <-done:
				return
			}
			if d := time.Until(at); d > 0 {
				select {
				case <-time.After(d):
				case <-done:
					return
				}
			}
			f, ok := r.take(slot, next)
			if !ok {
				return
			}
			t0 := time.Now()
			e := encoded{f: f}
			px, perr := r.c.Pre.Preprocess(f.Image())
			if e.err = perr; perr == nil {
				e.emb, e.err = r.c.Encode([][]float32{px})
			}
			e.took = time.Since(t0)
			select {
			case out <- e:
			case <-done:
				return
			}
			if e.err != nil {
				return
			}
			next = f.PTS + r.opt.Every
		}
	}()
	var encAvg, decAvg time.Duration
	mean := func(avg, d time.Duration) time.Duration {
		if avg == 0 {
			return d
		}
		return avg + (d-avg)/4
	}
	for e := range out {
		if e.err != nil {
			return fmt.Errorf("frame %d (%v): %w", e.f.Seq, e.f.PTS, e.err)
		}
		encAvg = mean(encAvg, e.took)
		t0 := time.Now()
		startAt <- t0.Add(max(0, decAvg-encAvg))
		caps, err := r.c.FromEmbeddings(e.emb, r.gen)
		if err != nil {
			return fmt.Errorf("frame %d (%v): %w", e.f.Seq, e.f.PTS, err)
		}
		decAvg = mean(decAvg, time.Since(t0))
		if err := r.captioned(e.f, caps); err != nil {
			return err
		}
	}
	return nil
}
