package dist

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// gpt2SmallGrads are the shapes of GPT-2 small's parameters (124.4M floats,
// 498 MB): what the all-reduce moves every step when GPT-2 is trained.
func gpt2SmallGrads() [][]int64 {
	shapes := [][]int64{{50257, 768}, {1024, 768}}
	for l := 0; l < 12; l++ {
		shapes = append(shapes, []int64{768}, []int64{768}, // ln_1
			[]int64{768, 2304}, []int64{2304}, []int64{768, 768}, []int64{768}, // attn
			[]int64{768}, []int64{768}, // ln_2
			[]int64{768, 3072}, []int64{3072}, []int64{3072, 768}, []int64{768}) // mlp
	}
	return append(shapes, []int64{768}, []int64{768})
}

// BenchmarkAllReduceGPT2Small: 2 ranks over loopback Gloo reduce GPT-2
// small's gradients (summed, as the trainer does, in their persistent
// buckets); GB/s is gradient bytes per second. The baseline is
// plain TCP over loopback moving the same bytes once, in the same run: a
// ring all-reduce of 2 ranks sends each byte once each way, so the ratio
// says how close c10d comes to the wire.
func BenchmarkAllReduceGPT2Small(b *testing.B) {
	var bytes int64
	for _, s := range gpt2SmallGrads() {
		n := int64(4)
		for _, d := range s {
			n *= d
		}
		bytes += n
	}
	tcp := loopbackGBs(b, bytes)
	var elapsed time.Duration
	errs := inProcess(b, 2, 5*time.Minute, func(g *Group) error {
		if err := start(g); err != nil {
			return err
		}
		var params []*ts.Tensor
		for _, s := range gpt2SmallGrads() {
			p := ts.MustZeros(s, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
			loss := p.MustSum(gotch.Float, false) // a gradient of ones
			loss.MustBackward()
			loss.MustDrop()
			params = append(params, p)
		}
		sums := []float64{1, 0} // the trainer's loss and stop flag
		// The warm-up call packs the buckets; the timed ones reduce in place.
		if err := g.ReduceGrads(params, sums); err != nil {
			return err
		}
		begin := time.Now()
		for i := 0; i < b.N; i++ {
			if err := g.ReduceGrads(params, sums); err != nil {
				return err
			}
		}
		if g.Rank == 0 {
			elapsed = time.Since(begin)
		}
		for _, p := range params {
			p.MustDrop()
		}
		return g.Barrier()
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	gbs := float64(bytes) * float64(b.N) / elapsed.Seconds() / 1e9
	b.ReportMetric(gbs, "GB/s")
	b.ReportMetric(tcp, "tcp-GB/s")
	b.ReportMetric(gbs/tcp, "x-tcp")
	b.ReportMetric(float64(bytes)/1e6, "MB")
}

// loopbackGBs is plain TCP throughput over loopback for n bytes.
func loopbackGBs(b *testing.B, n int64) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan int64)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- 0
			return
		}
		got, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- got
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4<<20)
	begin := time.Now()
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	got := <-done
	return float64(got) / time.Since(begin).Seconds() / 1e9
}
