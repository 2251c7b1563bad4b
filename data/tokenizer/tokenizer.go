// Package tokenizer is GPT-2's byte-level BPE tokenizer with the exact
// behaviour of OpenAI's encoder.py: the same pieces (contractions, leading
// spaces, whitespace runs, newlines), the same merges, no BOS/EOS added, and
// "<|endoftext|>" in text encoded as plain text.
//
// It wraps github.com/sugarme/tokenizer's BPE model (vocab, reverse vocab and
// merge ranks) and byte table, and replaces the two steps where that library
// deviates from GPT-2: pre-tokenization (pretokenize.go) and the merge loop
// (merge.go).
package tokenizer

import (
	"fmt"
	"strings"
	"sync"

	"github.com/sugarme/tokenizer/model/bpe"
)

// EndOfText is GPT-2's end-of-text token string (id 50256 in GPT-2's vocab).
const EndOfText = "<|endoftext|>"

// Tokenizer encodes text to GPT-2 token ids and back. It is safe for
// concurrent use.
type Tokenizer struct {
	model *bpe.BPE
	// byteID[b] is the vocab id of the single-byte token for byte b.
	byteID [256]int
	// raw[id] is the text (raw bytes) of token id, for Decode.
	raw []string

	mu    sync.RWMutex
	cache map[string][]int // piece -> ids; pieces repeat a lot in captions
}

// cacheLimit bounds the piece cache; it is cleared when full.
const cacheLimit = 1 << 16

// New builds a tokenizer from an in-memory vocab (byte-level token -> id) and
// merges (lines "a b" in rank order, as in merges.txt; a "#version" line and
// blank lines are skipped). Ids must be 0..len(vocab)-1, every byte's
// single-character token must be present, and every merge's parts and result
// must be in the vocab.
func New(vocab map[string]int, merges []string) (*Tokenizer, error) {
	return build("vocab", vocab, "merges", merges)
}

// NewByteLevel builds a small tokenizer for tests: the 256 byte tokens with
// GPT-2's ids (so "." is 13 and " " is 220 as in GPT-2), then one token per
// merge with ids 256, 257, ... in order, then EndOfText. With GPT-2's first k
// merges it is exactly the first 256+k entries of GPT-2's vocab.
func NewByteLevel(merges []string) (*Tokenizer, error) {
	vocab := make(map[string]int, 256+len(merges)+1)
	for id, b := range gpt2ByteOrder() {
		vocab[string(byteRune[b])] = id
	}
	for i, line := range merges {
		a, b, ok := splitMerge(line)
		if !ok {
			return nil, fmt.Errorf("tokenizer: merge %d %q: want two tokens separated by one space", i+1, line)
		}
		if _, dup := vocab[a+b]; !dup {
			vocab[a+b] = len(vocab)
		}
	}
	vocab[EndOfText] = len(vocab)
	return New(vocab, merges)
}

// build validates vocab and merges; vocabName and mergesName name their
// source in errors (a file path, or "vocab"/"merges" for in-memory input).
func build(vocabName string, vocab map[string]int, mergesName string, merges []string) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer: %s is empty", vocabName)
	}
	raw := make([]string, len(vocab))
	seen := make([]bool, len(vocab))
	for tok, id := range vocab {
		if id < 0 || id >= len(vocab) {
			return nil, fmt.Errorf("tokenizer: %s: token %q has id %d, outside 0..%d (ids must be dense)", vocabName, tok, id, len(vocab)-1)
		}
		if seen[id] {
			return nil, fmt.Errorf("tokenizer: %s: id %d is used by more than one token (one is %q)", vocabName, id, tok)
		}
		seen[id] = true
		r, ok := rawBytes(tok)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: token %q has characters outside GPT-2's byte-level alphabet", vocabName, tok)
		}
		raw[id] = r
	}
	t := &Tokenizer{raw: raw, cache: make(map[string][]int)}
	for b := 0; b < 256; b++ {
		id, ok := vocab[string(byteRune[b])]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s lacks the token %q for byte 0x%02x; a byte-level vocab needs all 256", vocabName, string(byteRune[b]), b)
		}
		t.byteID[b] = id
	}

	table := make(bpe.Merges, len(merges))
	rank := 0
	for i, line := range merges {
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		a, b, ok := splitMerge(line)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s line %d %q: want two tokens separated by one space", mergesName, i+1, line)
		}
		ia, oka := vocab[a]
		ib, okb := vocab[b]
		ic, okc := vocab[a+b]
		if !oka || !okb || !okc {
			return nil, fmt.Errorf("tokenizer: %s line %d %q: %q, %q or %q is not in %s", mergesName, i+1, line, a, b, a+b, vocabName)
		}
		pair := bpe.Pair{C1: ia, C2: ib}
		if _, dup := table[pair]; dup {
			return nil, fmt.Errorf("tokenizer: %s line %d %q: merge listed twice", mergesName, i+1, line)
		}
		table[pair] = bpe.PairVal{Rank: rank, NewId: ic}
		rank++
	}

	builder := bpe.NewBpeBuilder()
	builder.VocabAndMerges(vocab, table)
	builder.CacheCapacity(0) // we cache whole pieces ourselves
	model, err := builder.Build()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: building BPE model from %s and %s: %w", vocabName, mergesName, err)
	}
	t.model = model
	return t, nil
}

// splitMerge splits a merges line "a b". Byte-level tokens never contain a
// space (it is written 'Ġ'), so exactly one separator is expected.
func splitMerge(line string) (a, b string, ok bool) {
	a, b, ok = strings.Cut(line, " ")
	if !ok || a == "" || b == "" || strings.Contains(b, " ") {
		return "", "", false
	}
	return a, b, true
}

// Encode returns the GPT-2 token ids of text. No BOS/EOS is added; special
// token strings in text are encoded as plain text, as GPT-2's encoder does.
// Any string (invalid UTF-8 included) round-trips through Decode.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	ids := make([]int, 0, len(text)/3+1)
	pretokenize(text, func(piece string) {
		ids = append(ids, t.encodePiece(piece)...)
	})
	return ids, nil
}

func (t *Tokenizer) encodePiece(piece string) []int {
	t.mu.RLock()
	ids, ok := t.cache[piece]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = make([]int, len(piece))
	for i := 0; i < len(piece); i++ {
		ids[i] = t.byteID[piece[i]]
	}
	ids = mergeWord(ids, *t.model.Merges)
	t.mu.Lock()
	if len(t.cache) >= cacheLimit {
		t.cache = make(map[string][]int)
	}
	// Clone: the key must not pin the caller's whole text in memory.
	t.cache[strings.Clone(piece)] = ids
	t.mu.Unlock()
	return ids
}

// Decode returns the text of ids. The result is the exact bytes the tokens
// stand for; a sequence cut inside a multi-byte character yields invalid
// UTF-8 rather than U+FFFD, so decoding can be done piecewise.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var sb strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(t.raw) {
			return "", fmt.Errorf("tokenizer: decode: id %d at position %d is outside the vocab (0..%d)", id, i, len(t.raw)-1)
		}
		sb.WriteString(t.raw[id])
	}
	return sb.String(), nil
}

// VocabSize is the number of token ids (50257 for GPT-2).
func (t *Tokenizer) VocabSize() int { return len(t.raw) }

// TokenID returns the id of the single token whose text is s, e.g. "." (13),
// " the" (262) or EndOfText (50256); ok is false when s is not one token.
func (t *Tokenizer) TokenID(s string) (int, bool) {
	return t.model.TokenToId(byteLevel(s))
}

// Token returns the text of token id; ok is false outside the vocab.
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.raw) {
		return "", false
	}
	return t.raw[id], true
}
