package dist

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// inProcess runs fn as every rank of a world-size job, one goroutine (on
// its own OS thread) per rank in this process, over loopback Gloo.
func inProcess(t testing.TB, world int, timeout time.Duration, fn func(g *Group) error) []error {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := 0; r < world; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			g, err := Init(Env{Rank: r, World: world, Addr: "127.0.0.1", Port: port}, "gloo", timeout)
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = fn(g)
		}(r)
	}
	wg.Wait()
	return errs
}

func start(g *Group) error {
	if err := g.Agree([]byte("same"), func(a, b []byte) string { return "" }); err != nil {
		return err
	}
	return g.Start("127.0.0.1")
}

// Rank r's gradients are r+1 times a pattern, so their sum over 3 ranks is
// 6 times it. Tiny buckets put several gradients in one bucket and the
// 40-float one in a bucket of its own; one parameter takes no part in the
// loss and keeps no gradient. A second step, after an in-place zero_grad,
// must accumulate into the same bucket memory: the gradients stay views of
// the buckets and are reduced without re-packing. From then on backward
// itself starts each bucket's all-reduce (ExpectBackward), and the sums
// must be the same.
func TestReduceGradsAndBroadcast(t *testing.T) {
	shapes := [][]int64{{3}, {2, 5}, {40}, {1}, {4, 4}}
	pattern := func(i int) []float32 {
		n := int64(1)
		for _, d := range shapes[i] {
			n *= d
		}
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(i*100+j) + 0.25
		}
		return v
	}
	const world, unused = 3, 3
	type result struct {
		grads [3][][]float64
		sums  [3][]float64
		ptrs  [3][]uintptr
		early [3]int
		bcast []float64
	}
	results := make([]result, world)
	errs := inProcess(t, world, 20*time.Second, func(g *Group) error {
		if err := start(g); err != nil {
			return err
		}
		g.BucketBytes = 64 // 16 floats
		var params []*ts.Tensor
		for i := range shapes {
			params = append(params, ts.MustZeros(shapes[i], gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true))
		}
		res := &results[g.Rank]
		for step := 0; step < 3; step++ {
			loss := ts.MustZeros([]int64{1}, gotch.Float, gotch.CPU)
			for i, p := range params {
				if i == unused {
					continue
				}
				coef := ts.MustOfSlice(pattern(i)).MustView(shapes[i], true).MustMulScalar(ts.FloatScalar(float64((g.Rank+1)*(step+1))), true)
				term := p.MustMul(coef, false).MustSum(gotch.Float, true)
				loss = loss.MustAdd(term, true)
				coef.MustDrop()
				term.MustDrop()
			}
			if step > 0 {
				if err := g.ExpectBackward(); err != nil {
					return err
				}
			}
			loss.MustBackward()
			loss.MustDrop()
			sums := []float64{float64(g.Rank + 1), 1}
			if err := g.ReduceGrads(params, sums); err != nil {
				return err
			}
			res.sums[step] = sums
			res.early[step] = g.StartedInBackward
			for _, p := range params {
				gr := p.MustGrad(false)
				if !gr.MustDefined() {
					res.grads[step] = append(res.grads[step], nil)
					res.ptrs[step] = append(res.ptrs[step], 0)
					gr.MustDrop()
					continue
				}
				res.grads[step] = append(res.grads[step], gr.Float64Values(false))
				res.ptrs[step] = append(res.ptrs[step], uintptr(gr.MustDataPtr()))
				gr.MustZero_() // zero_grad, in place
				gr.MustDrop()
			}
		}
		b := ts.MustOfSlice([]float32{float32(g.Rank), 7, float32(g.Rank * 2)})
		if err := g.Broadcast([]*ts.Tensor{b}, 1); err != nil {
			return err
		}
		res.bcast = b.Float64Values(false)
		return g.Barrier()
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	for r, res := range results {
		for step := 0; step < 3; step++ {
			factor := float64(6 * (step + 1))
			for i := range shapes {
				if i == unused {
					if res.grads[step][i] != nil {
						t.Fatalf("rank %d: the unused parameter has a gradient %v", r, res.grads[step][i])
					}
					continue
				}
				for j, w := range pattern(i) {
					if got, want := res.grads[step][i][j], factor*float64(w); math.Abs(got-want) > 1e-5*math.Abs(want) {
						t.Fatalf("rank %d step %d gradient %d [%d] = %v, want %v", r, step, i, j, got, want)
					}
				}
			}
			if fmt.Sprint(res.sums[step]) != "[6 3]" {
				t.Errorf("rank %d step %d: sums %v, want [6 3]", r, step, res.sums[step])
			}
		}
		for step := 1; step < 3; step++ {
			if fmt.Sprint(res.ptrs[step]) != fmt.Sprint(res.ptrs[0]) {
				t.Errorf("rank %d: gradients moved between steps (%v, then %v): not accumulated into the buckets", r, res.ptrs[0], res.ptrs[step])
			}
		}
		// Buckets hold the parameters in backward's order, the reverse of
		// theirs: gradients 1 (10 floats) and then 0 (3) share the last one.
		if res.ptrs[0][0] != res.ptrs[0][1]+10*4 {
			t.Errorf("rank %d: gradient 0 at %#x, gradient 1 at %#x: not one flat bucket in backward's order", r, res.ptrs[0][0], res.ptrs[0][1])
		}
		// Three buckets ({4}, {2}, {1, 0}); the unused parameter is in none.
		if res.early != [3]int{0, 3, 3} {
			t.Errorf("rank %d: buckets started inside backward, by step: %v, want [0 3 3]", r, res.early)
		}
		if fmt.Sprint(res.bcast) != "[1 7 2]" {
			t.Errorf("rank %d after broadcast from rank 1: %v", r, res.bcast)
		}
	}
}

func TestAgreeNamesTheDifferingRank(t *testing.T) {
	errs := inProcess(t, 3, 20*time.Second, func(g *Group) error {
		v := "bs: 4"
		if g.Rank == 2 {
			v = "bs: 8"
		}
		return g.Agree([]byte(v), func(a, b []byte) string { return string(a) + " vs " + string(b) })
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "rank 2's config differs from rank 0's (bs: 4 vs bs: 8)") {
			t.Errorf("rank %d: error %v, want one naming rank 2 and the difference", r, err)
		}
	}
}

func TestMissingRankIsNamed(t *testing.T) {
	port, _ := freePort()
	begin := time.Now()
	g, err := Init(Env{Rank: 0, World: 2, Addr: "127.0.0.1", Port: port}, "gloo", 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	err = g.Agree([]byte("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "rank(s) 1 of 2 did not join") {
		t.Fatalf("error %v, want one naming the missing rank 1", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("took %v with a 1.5 s timeout", d)
	}
}

func TestUnreachableMaster(t *testing.T) {
	port, _ := freePort() // nothing listens there
	begin := time.Now()
	_, err := Init(Env{Rank: 1, World: 2, Addr: "127.0.0.1", Port: port}, "gloo", 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("could not reach the rendezvous store at 127.0.0.1:%d", port)) {
		t.Fatalf("error %v, want one naming the address", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("took %v with a 1.5 s timeout", d)
	}
}

// A rank that leaves mid-job: the other's collective fails and names it.
// When rank 0 leaves, its rendezvous store goes with it.
func TestLostRankIsNamed(t *testing.T) {
	for _, c := range []struct {
		gone int
		want string
	}{
		{1, "lost rank(s) 1 of 2"},
		{0, "lost rank 0 (its rendezvous store at 127.0.0.1:"},
	} {
		errs := inProcess(t, 2, 5*time.Second, func(g *Group) error {
			if err := start(g); err != nil {
				return err
			}
			if g.Rank == c.gone {
				return nil // leaves: inProcess closes its group
			}
			x := ts.MustOfSlice([]float32{1, 2})
			return g.AllReduceSum(x)
		})
		other := 1 - c.gone
		if errs[c.gone] != nil {
			t.Fatal(errs[c.gone])
		}
		if errs[other] == nil || !strings.Contains(errs[other].Error(), c.want) {
			t.Errorf("rank %d: %v, want an error containing %q", other, errs[other], c.want)
		}
	}
}

func TestInitRejectsZeroTimeout(t *testing.T) {
	if _, err := Init(Env{Rank: 0, World: 2, Addr: "127.0.0.1", Port: 1}, "gloo", 0); err == nil || !strings.Contains(err.Error(), "dist_timeout") {
		t.Fatalf("error %v", err)
	}
}
