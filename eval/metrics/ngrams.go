package metrics

import (
	"slices"
	"strings"
)

// maxN is the longest n-gram BLEU and CIDEr-D count (both use n=4).
const maxN = 4

// gramCount is one n-gram of a sentence and how often it occurs there.
type gramCount struct {
	id    int32 // interned n-gram
	order int8  // n-1
	count int32
}

// sentence is a tokenized caption as BLEU and CIDEr see it.
type sentence struct {
	nwords int
	grams  []gramCount // sorted by id
}

// interner gives words and n-grams small integer ids, so n-gram counting
// and matching work on integers instead of string tuples.
type interner struct {
	words map[string]int32
	// grams maps (id of the n-gram's first n-1 words, last word) to the
	// n-gram's id; unigrams use prefix -1. An integer key hashes far faster
	// than a word tuple.
	grams *gramTable
	order []int8 // order[id] = n-1 of n-gram id

	ids, prev []int32 // scratch for sentence
	keys      []uint64
}

// newInterner sizes its n-gram table for chars characters of text: about
// four n-grams per word of five or six characters with its space, roughly
// half of them distinct (the table grows if that is short).
func newInterner(chars int) *interner {
	return &interner{words: map[string]int32{}, grams: newGramTable(chars / 3)}
}

func gramKey(prefix, word int32) uint64 { return uint64(uint32(prefix))<<32 | uint64(uint32(word)) }

func (in *interner) word(w string) int32 {
	id, ok := in.words[w]
	if !ok {
		id = int32(len(in.words))
		in.words[w] = id
	}
	return id
}

// sentence counts the 1..4-grams of s split as Python's str.split() does,
// which is how pycocoevalcap's BLEU and CIDEr read a tokenized caption.
func (in *interner) sentence(s string) sentence {
	ids := in.ids[:0]
	ids = appendPyWordIDs(ids, s, in)
	in.ids = ids
	keys := in.keys[:0]
	// prev[i] is the id of the (k-1)-gram starting at word i.
	prev := in.prev[:0]
	for range ids {
		prev = append(prev, -1)
	}
	in.prev = prev
	for k := 1; k <= maxN; k++ {
		for i := 0; i+k <= len(ids); i++ {
			id, old := in.grams.getOrAdd(gramKey(prev[i], ids[i+k-1]), int32(len(in.order)))
			if !old {
				in.order = append(in.order, int8(k-1))
			}
			prev[i] = id
			keys = append(keys, uint64(id)<<8|uint64(k-1))
		}
	}
	in.keys = keys
	// Sort by id (order rides in the low byte) and merge repeats into counts.
	slices.Sort(keys)
	out := make([]gramCount, 0, len(keys))
	for _, k := range keys {
		id := int32(k >> 8)
		if n := len(out); n > 0 && out[n-1].id == id {
			out[n-1].count++
			continue
		}
		out = append(out, gramCount{id: id, order: int8(k & 0xff), count: 1})
	}
	return sentence{nwords: len(ids), grams: out}
}

// appendPyWordIDs appends the ids of s's words, split as Python's
// str.split() does (see pyWords).
func appendPyWordIDs(ids []int32, s string, in *interner) []int32 {
	start := -1
	for i, r := range s {
		if isPySpace(r) {
			if start >= 0 {
				ids = append(ids, in.word(s[start:i]))
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		ids = append(ids, in.word(s[start:]))
	}
	return ids
}

// rougeWords is the caption split on single spaces, as pycocoevalcap's
// ROUGE-L does (so "" is one empty token, and a token holding a non-breaking
// space stays whole).
func (in *interner) rougeWords(s string) []int32 {
	parts := strings.Split(s, " ")
	ids := make([]int32, len(parts))
	for i, w := range parts {
		ids[i] = in.word(w)
	}
	return ids
}
