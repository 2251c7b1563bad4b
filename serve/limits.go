package serve

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/clipcap/clipcap/data/imageproc"
)

// Admission limits, shared by every endpoint that takes images: a request
// is admitted (or answered 429) before its body is read, its body must
// arrive at a minimum rate, and decoding waits for a slot and for its share
// of a memory budget estimated from the image header.

// bodyGrace is how long a body may take before the minimum rate applies.
const bodyGrace = time.Second

// admit takes one of the places for requests past admission (the queue
// plus one running batch), or answers 429 at once; release gives it back
// once the response is decided.
func (s *Server) admit() (release func(), err error) {
	select {
	case s.admitted <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.admitted }) }, nil
	default:
		he := errorf(http.StatusTooManyRequests, "the queue is full (%d images waiting); retry later", s.cfg.Queue)
		he.retryAfter = s.b.retryAfter()
		return nil, he
	}
}

// errSlowBody is returned by a guarded body that arrives too slowly.
var errSlowBody = errors.New("request body arrived too slowly")

// guardBody bounds how long reading r's body may take: the whole body
// within BodyTimeout, and after the first second at least MinBodyRate
// bytes a second on average, enforced with read deadlines so that a client
// trickling bytes (or none) is cut off. Call done once the body is read:
// after a success it clears the deadline, which must not fire while the
// handler waits for its caption (net/http would take it for a closed
// connection); after a failure it keeps it and closes the connection after
// the answer, so that net/http does not wait for the rest of the body.
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) (done func(ok bool)) {
	rc := http.NewResponseController(w)
	start := time.Now()
	g := &rateBody{r: r.Body, rc: rc, start: start, hard: start.Add(s.cfg.BodyTimeout), rate: s.cfg.MinBodyRate}
	g.extend()
	r.Body = g
	return func(ok bool) {
		if ok {
			rc.SetReadDeadline(time.Time{})
		} else {
			w.Header().Set("Connection", "close")
		}
	}
}

type rateBody struct {
	r           io.ReadCloser
	rc          *http.ResponseController
	start, hard time.Time
	rate        int64
	n           int64
}

// extend moves the read deadline to when the bytes read so far stop
// satisfying the rate.
func (b *rateBody) extend() {
	dl := b.start.Add(bodyGrace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
	if dl.After(b.hard) {
		dl = b.hard
	}
	b.rc.SetReadDeadline(dl)
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, errSlowBody
	}
	if err == nil {
		b.extend()
	}
	return n, err
}

func (b *rateBody) Close() error { return b.r.Close() }

// decodeImage checks an image's header against MaxPixels (413 before any
// pixel memory), waits for a decode slot and the image's estimated memory
// within DecodeMemory, then decodes and preprocesses it; bad images are
// the client's fault (400).
func (s *Server) decodeImage(ctx context.Context, data []byte, name string) ([]float32, error) {
	dec := s.c.Pre.Decoder
	dec.MaxPixels = s.cfg.MaxPixels
	hdr, err := dec.Check(data, name)
	if err != nil {
		return nil, imageError(err)
	}
	if err := s.decodeSlots.acquire(ctx, 1); err != nil {
		return nil, s.timeoutErr(ctx)
	}
	defer s.decodeSlots.release(1)
	cost := min(hdr.DecodeBytes, s.cfg.DecodeMemory) // one image larger than the budget runs alone
	if err := s.decodeMem.acquire(ctx, cost); err != nil {
		return nil, s.timeoutErr(ctx)
	}
	defer s.decodeMem.release(cost)
	im, err := dec.Decode(data, name)
	if err != nil {
		return nil, imageError(err)
	}
	px, err := s.c.Pre.Preprocess(im)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%s: %v", name, err)
	}
	return px, nil
}

func imageError(err error) error {
	if errors.Is(err, imageproc.ErrTooManyPixels) {
		return errorf(http.StatusRequestEntityTooLarge, "%v", err)
	}
	return errorf(http.StatusBadRequest, "%v (send JPEG, PNG, GIF, BMP or WebP)", err)
}

// budget is a weighted semaphore: acquire waits, first come first served,
// until n units are free or ctx is done.
type budget struct {
	mu      sync.Mutex
	free    int64
	waiters list.List // of *waiter
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(n int64) *budget { return &budget{free: n} }

func (b *budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.free += n
	default:
		b.waiters.Remove(e)
	}
	b.grant()
	b.mu.Unlock()
	return ctx.Err()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.grant()
	b.mu.Unlock()
}

// grant wakes waiters in order while the first one fits.
func (b *budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if w.n > b.free {
			return
		}
		b.free -= w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}
