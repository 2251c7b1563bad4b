package gpt2

import (
	"runtime"
	"sync"

	"github.com/clipcap/clipcap/model/nn"
)

// SetPrecision stores every Conv1D weight and the tied LM head in p for
// inference (fp32 restores the float32 path). Decoding a token reads each
// of these weights once, so their bytes are its memory floor; it returns
// that figure. The layers convert in parallel. Training must use fp32: the
// low-precision kernels have no gradients.
func (m *Model) SetPrecision(p nn.Precision) (int64, error) {
	var convs []*nn.Conv1D
	for _, b := range m.Blocks {
		convs = append(convs, b.Attn, b.Proj, b.Fc, b.MlpProj)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		first error
		head  *nn.LowP
		sem   = make(chan struct{}, runtime.GOMAXPROCS(0))
	)
	do := func(f func() (int64, error)) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := f()
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	if p == nn.FP32 || p == "" {
		total = 4 * int64(m.WTE.Numel())
	} else {
		do(func() (int64, error) { // the biggest matrix first
			var err error
			if head, err = nn.NewLowP(m.WTE, true, p); err != nil {
				return 0, err
			}
			return head.Bytes(), nil
		})
	}
	for _, c := range convs {
		do(func() (int64, error) { return c.SetPrecision(p) })
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	m.Head = head
	return total, nil
}
