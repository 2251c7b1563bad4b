package serve

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/model/generate"
)

// faulty wraps the tiny model: its next calls fail the way libtorch
// fails inside the model, through a gotch Must* call (log.Fatal, which
// without torchrt.TrapFatal ends the process).
type faulty struct {
	model
	fail atomic.Value // func() run at the start of the next Encode, then cleared
}

func (f *faulty) Encode(px [][]float32) ([][]float32, error) {
	if fn, _ := f.fail.Swap(func() {}).(func()); fn != nil {
		fn()
	}
	return f.model.Encode(px)
}

// A libtorch failure fails its batch (500, or 503 for out of memory) and
// the server goes on captioning.
func TestLibtorchFailureFailsOnlyItsBatch(t *testing.T) {
	s, hs := newServer(t, Config{MaxWait: time.Millisecond})
	f := &faulty{model: s.b.m}
	s.b.m = f // before any request: the batcher reads it after a queue receive
	img := pngBytes(t, testImage(3))
	for _, tc := range []struct {
		name string
		fail func()
		code int
		msg  string
	}{
		{"bad view", func() { ts.MustOnes([]int64{2, 3}, gotch.Float, gotch.CPU).MustView([]int64{7}, true) }, 500, "shape '[7]' is invalid"},
		{"out of memory", func() { ts.MustEmpty([]int64{1 << 50}, gotch.Float, gotch.CPU) }, 503, "out of memory"},
		{"bug", func() { panic("index out of range") }, 500, "internal error"},
	} {
		f.fail.Store(tc.fail)
		code, _, m := post(t, hs.URL+"/v1/captions", "image/png", img)
		if msg, _ := m["error"].(string); code != tc.code || !strings.Contains(msg, tc.msg) || strings.Contains(msg, "goroutine") {
			t.Errorf("%s: %d %q, want %d mentioning %q", tc.name, code, msg, tc.code, tc.msg)
		}
		if code, _, m := post(t, hs.URL+"/v1/captions", "image/png", img); code != 200 {
			t.Fatalf("after %s: %d %v", tc.name, code, m)
		}
	}
	if body := get(t, hs.URL+"/metrics", 200); !strings.Contains(body, "clipcap_batch_failures_total 3\n") {
		t.Errorf("metrics: %s", body)
	}
}

// slowGen stands in for generation that takes long: it waits for its
// context and reports when it saw it end.
type slowGen struct {
	model
	stopped chan time.Time
}

func (g *slowGen) FromEmbeddingsWith(ctx context.Context, e [][]float32, o generate.Options, _ generate.Hooks) ([]caption.Caption, error) {
	select {
	case <-ctx.Done():
		g.stopped <- time.Now()
		return nil, ctx.Err()
	case <-time.After(20 * time.Second):
		return nil, nil
	}
}

// A request that times out (504) or whose client goes away stops its
// generation: the context reaches the model.
func TestTimeoutAndDisconnectStopGeneration(t *testing.T) {
	s, hs := newServer(t, Config{MaxWait: time.Millisecond, Timeout: 300 * time.Millisecond})
	g := &slowGen{model: s.b.m, stopped: make(chan time.Time, 2)}
	s.b.m = g
	img := pngBytes(t, testImage(4))
	start := time.Now()
	if code, _, m := post(t, hs.URL+"/v1/captions", "image/png", img); code != 504 {
		t.Errorf("%d %v, want 504", code, m)
	}
	select {
	case at := <-g.stopped:
		if d := at.Sub(start); d > 2*time.Second {
			t.Errorf("generation stopped %v after the request began", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("generation went on after the 504")
	}
	// A client that disconnects: no timeout reached, the context is
	// cancelled by net/http.
	s2, hs2 := newServer(t, Config{MaxWait: time.Millisecond})
	g.model = s2.b.m
	s2.b.m = g
	hs = hs2
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/captions", strings.NewReader(string(img)))
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	http.DefaultClient.Do(req)
	select {
	case <-g.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("generation went on after the client left")
	}
}
