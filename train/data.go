package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/data/tokenizer"
)

// Dataset is one split of a feature store with its captions tokenized once
// up front.
type Dataset struct {
	Store    *featstore.Store
	Captions []featstore.Caption
	Tokens   [][]int // truncated to MaxLen
	MaxLen   int     // caption token cap
	// Dropped counts the split's empty (or blank) captions, which are left
	// out: a row without tokens has no target, and a batch made only of
	// such rows would average a loss over nothing (NaN).
	Dropped int
}

// NewDataset tokenizes the captions of split, leaving out empty ones. maxLen 0 means the original's
// rule: min(int(mean + 10·std), max) of the token lengths (std unbiased, as
// torch.std).
func NewDataset(store *featstore.Store, split string, tok *tokenizer.Tokenizer, maxLen int) (*Dataset, error) {
	all := store.Split(split)
	d := &Dataset{Store: store, Captions: make([]featstore.Caption, 0, len(all)), Tokens: make([][]int, 0, len(all))}
	for _, c := range all {
		if strings.TrimSpace(c.Caption) == "" {
			d.Dropped++
			continue
		}
		ids, err := tok.Encode(c.Caption)
		if err != nil {
			return nil, fmt.Errorf("feature store %s: caption of %s: %w", store.Dir, c.ImageID, err)
		}
		d.Captions = append(d.Captions, c)
		d.Tokens = append(d.Tokens, ids)
	}
	if maxLen <= 0 {
		maxLen = AutoMaxLen(d.Tokens)
	}
	d.MaxLen = maxLen
	for i, t := range d.Tokens {
		if len(t) > maxLen {
			d.Tokens[i] = t[:maxLen]
		}
	}
	return d, nil
}

// AutoMaxLen is the original's padding length, min(int(mean+10·std), max).
func AutoMaxLen(tokens [][]int) int {
	n := len(tokens)
	if n == 0 {
		return 1
	}
	var sum float64
	longest := 0
	for _, t := range tokens {
		sum += float64(len(t))
		longest = max(longest, len(t))
	}
	mean := sum / float64(n)
	var ss float64
	for _, t := range tokens {
		d := float64(len(t)) - mean
		ss += d * d
	}
	std := 0.0
	if n > 1 {
		std = math.Sqrt(ss / float64(n-1))
	}
	return max(1, min(int(mean+10*std), longest))
}

// Len is the number of captions.
func (d *Dataset) Len() int { return len(d.Captions) }

// Batch is one padded micro-batch in host memory.
type Batch struct {
	Index   int       // micro-batch index in its epoch
	Rows    []int     // caption indices in the dataset
	Emb     []float32 // [B, D]
	Tokens  []int64   // [B, T]; padding is 0
	Mask    []float32 // [B, T]; 1 for real tokens
	B, T, D int
	NTokens int // real tokens
}

// Plan is the order of one epoch: micro-batches of caption indices. It is
// a pure function of (seed, epoch), so a resumed run rebuilds it exactly.
func (d *Dataset) Plan(seed int64, epoch, bs int, bucket bool) [][]int {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(epoch)+1))
	perm := r.Perm(d.Len())
	if bucket {
		// Sort within windows of 50 batches so each batch holds similar
		// lengths (less padding), then shuffle the batches' order.
		win := 50 * bs
		for s := 0; s < len(perm); s += win {
			w := perm[s:min(s+win, len(perm))]
			sort.SliceStable(w, func(a, b int) bool { return len(d.Tokens[w[a]]) < len(d.Tokens[w[b]]) })
		}
	}
	// drop_last, as the original's DataLoader.
	nb := len(perm) / bs
	batches := make([][]int, nb)
	for i := range batches {
		batches[i] = perm[i*bs : (i+1)*bs]
	}
	if bucket {
		r.Shuffle(len(batches), func(a, b int) { batches[a], batches[b] = batches[b], batches[a] })
	}
	return batches
}

// Load fills a batch: embeddings from the store and captions padded to the
// batch's longest one.
func (d *Dataset) Load(index int, rows []int) (*Batch, error) {
	dim := d.Store.Dim()
	t := 1
	for _, r := range rows {
		t = max(t, len(d.Tokens[r]))
	}
	b := &Batch{Index: index, Rows: rows, B: len(rows), T: t, D: dim,
		Emb: make([]float32, len(rows)*dim), Tokens: make([]int64, len(rows)*t), Mask: make([]float32, len(rows)*t)}
	for i, r := range rows {
		if err := d.Store.Embedding(d.Captions[r].Embedding, b.Emb[i*dim:(i+1)*dim]); err != nil {
			return nil, err
		}
		for j, id := range d.Tokens[r] {
			b.Tokens[i*t+j] = int64(id)
			b.Mask[i*t+j] = 1
		}
		b.NTokens += len(d.Tokens[r])
	}
	return b, nil
}

// prefetch loads batches[from:] in a background goroutine, a few ahead of
// the consumer, so the trainer never waits on the store. Closing stop ends
// it early; the returned channel is closed once the goroutine is done with
// the store.
func (d *Dataset) prefetch(batches [][]int, from int, stop <-chan struct{}) <-chan batchOrErr {
	out := make(chan batchOrErr, 4)
	go func() {
		defer close(out)
		for i := from; i < len(batches); i++ {
			select {
			case <-stop:
				return
			default:
			}
			b, err := d.Load(i, batches[i])
			select {
			case out <- batchOrErr{b, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

type batchOrErr struct {
	b   *Batch
	err error
}
