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

// BenchmarkScore5000 includes PTB tokenization of all 30,000 captions.
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
