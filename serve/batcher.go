package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/generate"
)

// job is one image waiting for a caption.
type job struct {
	ctx context.Context
	px  []float32
	opt generate.Options // merged with the model's defaults
	key string           // jobs with equal keys decode together
	// n is how many captions of the image to sample (rows in the
	// generation batch, seeded opt.Seed + choice); 0 means 1.
	n int
	// onToken, when set, sees each caption's tokens as they are generated.
	// It runs on the batcher's goroutine and must not block.
	onToken func(choice, token int)
	enq     time.Time
	done    chan result // buffered: the batcher never blocks on a gone client
	sent    bool        // done has its result (batcher goroutine only)
}

// answer sends j's result once; a batch that fails halfway answers the
// jobs still waiting and leaves the others be.
func (j *job) answer(r result) {
	if !j.sent {
		j.sent = true
		j.done <- r
	}
}

func (j *job) rows() int { return max(j.n, 1) }

type result struct {
	cap              caption.Caption
	caps             []caption.Caption // all j.rows() captions; cap is caps[0]
	queue, enc, gen  time.Duration
	batch, encodeAll int
	err              error
}

// model is what the batcher needs from a Captioner: one CLIP pass for the
// whole batch, then one generation call per group of equal options.
type model interface {
	Encode(pixels [][]float32) ([][]float32, error)
	FromEmbeddingsWith(ctx context.Context, emb [][]float32, opt generate.Options, h generate.Hooks) ([]caption.Caption, error)
}

// batcher collects queued jobs into batches: it waits for a first job,
// then takes more until maxBatch jobs or maxWait have passed, and runs them
// as one forward pass per group of identical options.
type batcher struct {
	m        model
	q        chan *job
	maxBatch int
	maxWait  time.Duration
	depth    atomic.Int64 // queued + being collected
	metrics  *metrics
	stop     chan struct{}
	wg       sync.WaitGroup
	// beforeRun, when set (tests), runs before each batch is computed.
	beforeRun func([]*job)
	// avgBatch is the recent mean time of one batch, for Retry-After.
	avgBatch atomic.Int64
}

func newBatcher(m model, maxBatch, queue int, maxWait time.Duration, met *metrics) *batcher {
	b := &batcher{m: m, q: make(chan *job, queue), maxBatch: maxBatch, maxWait: maxWait, metrics: met, stop: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

// submit queues j, or reports false when the queue is full.
func (b *batcher) submit(j *job) bool {
	select {
	case b.q <- j:
		b.metrics.queueDepth.Store(b.depth.Add(1))
		return true
	default:
		return false
	}
}

// retryAfter estimates seconds until the queue has room: the batches
// ahead times the recent batch time, at least one second.
func (b *batcher) retryAfter() int {
	batches := (b.depth.Load() + int64(b.maxBatch) - 1) / int64(b.maxBatch)
	sec := int((time.Duration(batches) * time.Duration(b.avgBatch.Load())).Seconds() + 0.999)
	return max(sec, 1)
}

// close stops the loop after the jobs already queued have run.
func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	// libtorch's grad mode is per OS thread and ts.NoGrad switches it
	// around calls; pinning the goroutine keeps switch and call on one
	// thread (else an in-place weight copy can run with grad enabled).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for {
		var first *job
		select {
		case first = <-b.q:
		case <-b.stop:
			// Drain what is queued so no handler waits forever.
			for {
				select {
				case j := <-b.q:
					b.run([]*job{j})
				default:
					return
				}
			}
		}
		batch := []*job{first}
		timer := time.NewTimer(b.maxWait)
	collect:
		for len(batch) < b.maxBatch {
			select {
			case j := <-b.q:
				batch = append(batch, j)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		b.run(batch)
	}
}

func (b *batcher) run(batch []*job) {
	b.metrics.queueDepth.Store(b.depth.Add(-int64(len(batch))))
	// A libtorch failure (a Must* call panicking under torchrt.TrapFatal,
	// e.g. CUDA out of memory) or a bug fails this batch, not the server.
	defer func() {
		if v := recover(); v != nil {
			err := torchrt.Recovered(v)
			var pe *torchrt.PanicError
			if errors.As(err, &pe) {
				fmt.Fprintf(os.Stderr, "serve: batch of %d failed: %v\n%s", len(batch), pe.Value, pe.Stack)
			}
			b.metrics.batchFailures.Add(1)
			for _, j := range batch {
				j.answer(result{err: err})
			}
		}
	}()
	if b.beforeRun != nil {
		b.beforeRun(batch)
	}
	start := time.Now()
	// Jobs whose request already timed out or went away are skipped.
	live := batch[:0:0]
	for _, j := range batch {
		if j.ctx.Err() != nil {
			j.answer(result{err: j.ctx.Err()})
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	b.metrics.batchSize.observe(float64(len(live)))
	px := make([][]float32, len(live))
	for i, j := range live {
		px[i] = j.px
	}
	emb, err := b.m.Encode(px)
	encDur := time.Since(start)
	if err != nil {
		for _, j := range live {
			j.answer(result{err: fmt.Errorf("encoding images: %w", err)})
		}
		return
	}
	// Groups in order of first appearance, each one generation call.
	var keys []string
	groups := map[string][]int{}
	for i, j := range live {
		if _, ok := groups[j.key]; !ok {
			keys = append(keys, j.key)
		}
		groups[j.key] = append(groups[j.key], i)
	}
	for _, k := range keys {
		idx := groups[k]
		// One generation row per caption wanted: a job asking for n
		// samples repeats its embedding n times, each row with the job's
		// own seed + choice, so its captions do not depend on the batch.
		var (
			e      [][]float32
			seeds  []int64
			rowJob []*job
			rowCh  []int
			first  = make([]int, len(idx))
		)
		for n, i := range idx {
			j := live[i]
			first[n] = len(e)
			for c := 0; c < j.rows(); c++ {
				e = append(e, emb[i])
				seeds = append(seeds, j.opt.Seed+int64(c))
				rowJob = append(rowJob, j)
				rowCh = append(rowCh, c)
			}
		}
		hooks := generate.Hooks{Seeds: seeds, OnToken: func(row, tok int) {
			if f := rowJob[row].onToken; f != nil {
				f(rowCh[row], tok)
			}
		}}
		g0 := time.Now()
		gctx, cancel := anyWaiting(live, idx)
		caps, err := b.m.FromEmbeddingsWith(gctx, e, live[idx[0]].opt, hooks)
		cancel()
		genDur := time.Since(g0)
		for n, i := range idx {
			j := live[i]
			r := result{queue: start.Sub(j.enq), enc: encDur, gen: genDur, batch: len(idx), encodeAll: len(live), err: err}
			if err == nil {
				r.caps = caps[first[n] : first[n]+j.rows()]
				r.cap = r.caps[0]
			}
			j.answer(r)
		}
	}
	d := time.Since(start)
	old := b.avgBatch.Load()
	b.avgBatch.Store(old + (int64(d)-old)/4)
}

// anyWaiting is a context that is done once every job of the group (live
// at idx) is: generation goes on while anyone still waits for it, and
// stops between two tokens when the last one timed out or went away.
func anyWaiting(live []*job, idx []int) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for _, i := range idx {
			select {
			case <-live[i].ctx.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	return ctx, cancel
}

// computeErr turns a failed batch's error into the answer: out of memory
// is a temporary condition (503), libtorch errors lose their stack traces.
func computeErr(err error) error {
	var pe *torchrt.PanicError
	if errors.As(err, &pe) {
		return errorf(http.StatusInternalServerError, "internal error (logged by the server)")
	}
	short := torchrt.Short(err) // also makes returned (not panicked) libtorch errors classifiable
	if errors.Is(short, torchrt.ErrOutOfMemory) {
		he := errorf(http.StatusServiceUnavailable, "out of memory while captioning (%v); retry later or with a smaller beam", short)
		he.retryAfter = 1
		return he
	}
	return errorf(http.StatusInternalServerError, "%v", short)
}
