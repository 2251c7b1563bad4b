package train

import (
	"fmt"
	"strings"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/model/generate"
)

// ValLoss is the mean cross-entropy per caption token over the first
// val_batches batches of the validation split (all when 0), in eval mode.
func (t *Trainer) ValLoss() (float64, error) {
	if t.Val == nil {
		return 0, fmt.Errorf("no validation split")
	}
	var sum float64
	var tokens int
	var err error
	nb := 0
	for s := 0; s < t.Val.Len(); s, nb = s+t.Cfg.BS, nb+1 {
		if t.Cfg.ValBatches > 0 && nb == t.Cfg.ValBatches {
			break
		}
		if nb%t.world() != t.rank() {
			continue // another rank's batch
		}
		rows := make([]int, 0, t.Cfg.BS)
		for r := s; r < min(s+t.Cfg.BS, t.Val.Len()); r++ {
			rows = append(rows, r)
		}
		b, lerr := t.Val.Load(nb, rows)
		if lerr != nil {
			return 0, lerr
		}
		noGrad(func() {
			db := toDevice(b, t.dev)
			defer db.free()
			loss, lerr := t.Model.Loss(db.clip, db.tokens, db.mask, false)
			if lerr != nil {
				err = lerr
				return
			}
			sum += loss.Float64Values(true)[0] * float64(db.ntokens)
			tokens += db.ntokens
		})
		if err != nil {
			return 0, err
		}
	}
	// Every rank took every world-th batch: add up their sums.
	all, err := t.agree(sum, float64(tokens))
	if err != nil {
		return 0, err
	}
	sum, tokens = all[0], int(all[1])
	if tokens == 0 {
		return 0, fmt.Errorf("validation split has no caption tokens")
	}
	return sum / float64(tokens), nil
}

func (t *Trainer) validate(now float64) error {
	if t.Val == nil {
		return nil
	}
	vl, err := t.ValLoss()
	if err != nil {
		return err
	}
	if t.Cfg.Progress && t.Log != nil {
		fmt.Fprintf(t.Log, "validation: step %d, epoch %d, val_loss %.4f\n", t.st.Step, t.st.Epoch+1, vl)
	}
	return t.metrics.write(Record{Type: "val", Step: t.st.Step, Epoch: t.st.Epoch + 1, ValLoss: f64(vl), Time: now})
}

// Captions generates greedy captions for dataset rows (distinct images)
// through the inference path that caption, eval and serve use.
func (t *Trainer) Captions(d *Dataset, rows []int) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	b, err := d.Load(0, rows)
	if err != nil {
		return nil, err
	}
	emb := make([][]float32, b.B)
	for i := range emb {
		emb[i] = b.Emb[i*b.D : (i+1)*b.D]
	}
	maxTok := int(min(67, t.Model.Cfg.GPT2.NPositions-t.Model.PrefixLength()))
	caps, err := caption.New(t.Model, t.Tok, t.dev).FromEmbeddings(emb, generate.Options{Strategy: generate.Greedy, MaxTokens: maxTok})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimSpace(c.Text)
	}
	return out, nil
}

// sampleRows picks the first n distinct images of d.
func sampleRows(d *Dataset, n int) []int {
	seen := map[int]bool{}
	var rows []int
	for i, c := range d.Captions {
		if len(rows) == n {
			break
		}
		if !seen[c.Embedding] {
			seen[c.Embedding] = true
			rows = append(rows, i)
		}
	}
	return rows
}

func (t *Trainer) sampleCaptions(epoch int, now float64) error {
	if t.Cfg.SampleCaptions == 0 || !t.leader() {
		return nil
	}
	d := t.Val
	if d == nil {
		d = t.Train
	}
	rows := sampleRows(d, t.Cfg.SampleCaptions)
	caps, err := t.Captions(d, rows)
	if err != nil {
		return fmt.Errorf("sample captions: %w", err)
	}
	rec := Record{Type: "samples", Step: t.st.Step, Epoch: epoch + 1, Time: now}
	for i, r := range rows {
		c := d.Captions[r]
		rec.Samples = append(rec.Samples, Sample{ImageID: c.ImageID, Caption: caps[i], Reference: c.Caption})
		fmt.Fprintf(t.Log, "epoch %d sample %s: %q (reference %q)\n", epoch+1, c.ImageID, caps[i], c.Caption)
	}
	return t.metrics.write(rec)
}
