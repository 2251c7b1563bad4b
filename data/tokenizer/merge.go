package tokenizer

import (
	"container/heap"

	"github.com/sugarme/tokenizer/model/bpe"
)

// mergeWord runs GPT-2's BPE on one piece given as vocab ids of its bytes and
// returns the final token ids. It reuses ids as scratch space.
//
// GPT-2 (encoder.py) repeatedly takes the lowest-rank pair present and merges
// every occurrence of it, left to right, without overlap ("a a a" with
// merge "a a" gives "aa a"). sugarme/tokenizer's Word.MergeAll uses a heap
// ordered by rank and an unset timestamp, so equal-rank occurrences pop in
// heap order rather than left to right: "!!!" becomes "!", "!!" instead of
// GPT-2's "!!!". We keep its merges table but do the merging here: a heap of
// (rank, position) entries, processed one rank at a time. All occurrences of
// a rank are merged before the pairs they create are queued, which is
// exactly GPT-2's pass structure, in O(n log n) instead of O(n²) for long
// pieces.
func mergeWord(ids []int, merges bpe.Merges) []int {
	n := len(ids)
	if n < 2 {
		return ids
	}
	// Doubly linked list over positions; dead positions were absorbed into
	// their left neighbour.
	next := make([]int, n)
	prev := make([]int, n)
	dead := make([]bool, n)
	for i := range ids {
		next[i] = i + 1
		prev[i] = i - 1
	}
	next[n-1] = -1

	q := make(pairQueue, 0, n)
	for i := 0; i+1 < n; i++ {
		if m, ok := merges[bpe.Pair{C1: ids[i], C2: ids[i+1]}]; ok {
			q = append(q, pairEntry{rank: m.Rank, pos: i})
		}
	}
	heap.Init(&q)

	var merged []int
	for q.Len() > 0 {
		rank := q[0].rank
		merged = merged[:0]
		for q.Len() > 0 && q[0].rank == rank {
			pos := heap.Pop(&q).(pairEntry).pos
			// Skip entries made stale by an earlier merge in this pass.
			if dead[pos] || next[pos] < 0 {
				continue
			}
			right := next[pos]
			m, ok := merges[bpe.Pair{C1: ids[pos], C2: ids[right]}]
			if !ok || m.Rank != rank {
				continue
			}
			ids[pos] = m.NewId
			dead[right] = true
			next[pos] = next[right]
			if next[right] >= 0 {
				prev[next[right]] = pos
			}
			merged = append(merged, pos)
		}
		// Queue the pairs the merged tokens now form with their neighbours.
		for _, pos := range merged {
			if dead[pos] {
				continue
			}
			if p := prev[pos]; p >= 0 {
				if m, ok := merges[bpe.Pair{C1: ids[p], C2: ids[pos]}]; ok {
					heap.Push(&q, pairEntry{rank: m.Rank, pos: p})
				}
			}
			if nx := next[pos]; nx >= 0 {
				if m, ok := merges[bpe.Pair{C1: ids[pos], C2: ids[nx]}]; ok {
					heap.Push(&q, pairEntry{rank: m.Rank, pos: pos})
				}
			}
		}
	}

	out := ids[:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	return out
}

type pairEntry struct{ rank, pos int }

// pairQueue orders by rank, then position: leftmost first within a rank.
type pairQueue []pairEntry

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pairEntry)) }
func (q *pairQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
