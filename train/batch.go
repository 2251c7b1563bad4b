package train

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// deviceBatch is a Batch on the training device, the inputs of
// clipcap.Model.Loss; ntokens counts its real caption tokens.
type deviceBatch struct {
	clip, tokens, mask *ts.Tensor
	ntokens            int
}

func toDevice(b *Batch, dev gotch.Device) *deviceBatch {
	mv := func(t *ts.Tensor) *ts.Tensor {
		if !dev.IsCuda() {
			return t
		}
		return t.MustTo(dev, true)
	}
	ntokens := 0
	for _, v := range b.Mask {
		if v != 0 {
			ntokens++
		}
	}
	return &deviceBatch{
		clip:    mv(ts.MustOfSlice(b.Emb).MustView([]int64{int64(b.B), int64(b.D)}, true)),
		tokens:  mv(ts.MustOfSlice(b.Tokens).MustView([]int64{int64(b.B), int64(b.T)}, true)),
		mask:    mv(ts.MustOfSlice(b.Mask).MustView([]int64{int64(b.B), int64(b.T)}, true)),
		ntokens: ntokens,
	}
}

func (d *deviceBatch) free() {
	for _, t := range []*ts.Tensor{d.clip, d.tokens, d.mask} {
		t.MustDrop()
	}
}
