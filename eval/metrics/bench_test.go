package metrics

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchCase builds a deterministic corpus of n images with 5 references each.
// Captions are lowercase words without punctuation, so PTB tokenization
// leaves them unchanged and the toolkit and we score the same tokens whether
// or not tokenization runs.
func benchCase(n int) ([]Caption, *Annotations) {
	rng := rand.New(rand.NewPCG(7, 11))
	vocab := make([]string, 2000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%d", i)
	}
	// Zipf-like word choice: common words recur, as in real captions.
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(vocab)-1))
	sent := func() string {
		words := make([]string, 6+rng.IntN(12))
		for i := range words {
			words[i] = vocab[zipf.Uint64()]
		}
		return strings.Join(words, " ")
	}
	ann := &Annotations{}
	res := make([]Caption, n)
	for i := 0; i < n; i++ {
		id := IntID(int64(100000 + i))
		ann.Images = append(ann.Images, id)
		for j := 0; j < 5; j++ {
			ann.Captions = append(ann.Captions, Caption{ImageID: id, Caption: sent()})
		}
		res[i] = Caption{ImageID: id, Caption: sent()}
	}
	return res, ann
}

// benchTokenized is benchCase in ScoreTokenized's form.
func benchTokenized(b testing.TB, n int) ([]ImageID, []string, [][]string) {
	res, ann := benchCase(n)
	ids, refs, err := groupRefs(ann)
	if err != nil {
		b.Fatal(err)
	}
	cands, err := matchResults(ids, res)
	if err != nil {
		b.Fatal(err)
	}
	return ids, cands, refs
}

// BenchmarkScoreTokenized5000 is BLEU-1..4 + ROUGE-L + CIDEr-D on 5,000
// images and 25,000 references, tokenization excluded (the figure compared
// with pycocoevalcap by scripts/bench_score.sh).
func BenchmarkScoreTokenized5000(b *testing.B) {
	ids, cands, refs := benchTokenized(b, 5000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := ScoreTokenized(ids, cands, refs, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScore5000 includes PTB tokenization of all 30,000 captions: the
// figure scripts/bench_score.sh compares with pycocoevalcap, whose own time
// leaves its Java tokenizer out.
func BenchmarkScore5000(b *testing.B) {
	res, ann := benchCase(5000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Score(res, ann, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteBenchFiles writes the benchmark corpus as COCO files, and our
// corpus scores, into $BENCH_SCORE_DIR for scripts/bench_score.sh.
func TestWriteBenchFiles(t *testing.T) {
	dir := os.Getenv("BENCH_SCORE_DIR")
	if dir == "" {
		t.Skip("BENCH_SCORE_DIR not set (used by scripts/bench_score.sh)")
	}
	res, ann := benchCase(5000)
	type img struct {
		ID ImageID `json:"id"`
	}
	imgs := make([]img, len(ann.Images))
	for i, id := range ann.Images {
		imgs[i] = img{id}
	}
	rep, err := Score(res, ann, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"results.json":     res,
		"annotations.json": map[string]any{"images": imgs, "annotations": ann.Captions},
		"go_scores.json":   rep.Corpus,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// benchTokenize reports Tokenize's time per caption.
func benchTokenize(b *testing.B, caps []string) {
	b.ResetTimer()
	for b.Loop() {
		Tokenize(caps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(caps)), "ns/caption")
}

// BenchmarkTokenize30k tokenizes the 30,000 captions of benchCase(5000):
// plain words, all on the fast path.
func BenchmarkTokenize30k(b *testing.B) {
	res, ann := benchCase(5000)
	caps := make([]string, 0, len(ann.Captions)+len(res))
	for _, c := range ann.Captions {
		caps = append(caps, c.Caption)
	}
	for _, c := range res {
		caps = append(caps, c.Caption)
	}
	benchTokenize(b, caps)
}

// BenchmarkTokenizeAdversarial30k tokenizes the parity references (COCO-like
// sentences, a third of them laced with contractions, abbreviations,
// numbers, quotes, URLs and non-ASCII text), repeated to 30,000 captions:
// about half of them need the full lexer.
func BenchmarkTokenizeAdversarial30k(b *testing.B) {
	ann, err := LoadAnnotations(filepath.Join("testdata", "parity_main_annotations.json"))
	if err != nil {
		b.Fatal(err)
	}
	caps := make([]string, 0, 30000)
	for len(caps) < 30000 {
		for _, c := range ann.Captions {
			caps = append(caps, c.Caption)
		}
	}
	benchTokenize(b, caps[:30000])
}

// BenchmarkTokenizeOnePass3k is the one-pass lexer Tokenize replaced, on
// the first 3,000 of the same 30,000 captions (it is slow), for the speedup.
func BenchmarkTokenizeOnePass3k(b *testing.B) {
	res, ann := benchCase(5000)
	caps := make([]string, 0, 3000)
	for _, c := range ann.Captions[:2500] {
		caps = append(caps, c.Caption)
	}
	for _, c := range res[:500] {
		caps = append(caps, c.Caption)
	}
	b.ResetTimer()
	for b.Loop() {
		tokenizeOnePass(caps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(caps)), "ns/caption")
}
