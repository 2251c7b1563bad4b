package metrics

import "math"

// Constants of pycocoevalcap's BleuScorer: tiny keeps a zero match count
// from giving log(0), small keeps a zero guess count from dividing by zero.
const (
	bleuTiny  = 1e-15
	bleuSmall = 1e-9
)

// bleuStats is what BLEU needs from one image.
type bleuStats struct {
	testlen, reflen int
	guess, correct  [maxN]int
}

// bleuImage compares a candidate with its references: clipped n-gram
// matches and the "closest" reference length (ties to the shorter).
func bleuImage(cand sentence, refs []sentence) bleuStats {
	st := bleuStats{testlen: cand.nwords}
	best := -1
	for _, r := range refs {
		d := absInt(r.nwords - cand.nwords)
		if best < 0 || d < absInt(best-cand.nwords) || (d == absInt(best-cand.nwords) && r.nwords < best) {
			best = r.nwords
		}
	}
	st.reflen = best
	for k := 0; k < maxN; k++ {
		st.guess[k] = max(0, cand.nwords-k)
	}
	// Clipped matches: min(candidate count, max count in any one reference).
	for _, g := range cand.grams {
		m := int32(0)
		for _, r := range refs {
			if c := countOf(r.grams, g.id); c > m {
				m = c
			}
		}
		st.correct[g.order] += int(min(m, g.count))
	}
	return st
}

// countOf finds id in grams (sorted by id) by binary search.
func countOf(grams []gramCount, id int32) int32 {
	lo, hi := 0, len(grams)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if grams[mid].id < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(grams) && grams[lo].id == id {
		return grams[lo].count
	}
	return 0
}

// bleuScores turns counts into BLEU-1..4 exactly as BleuScorer.compute_score
// does: the running product of per-order precisions, its k-th root, and the
// brevity penalty when the candidate is shorter.
func bleuScores(testlen, reflen int, guess, correct [maxN]int) [maxN]float64 {
	var out [maxN]float64
	bleu := 1.0
	for k := 0; k < maxN; k++ {
		bleu *= (float64(correct[k]) + bleuTiny) / (float64(guess[k]) + bleuSmall)
		out[k] = math.Pow(bleu, 1.0/float64(k+1))
	}
	ratio := (float64(testlen) + bleuTiny) / (float64(reflen) + bleuSmall)
	if ratio < 1 {
		bp := math.Exp(1 - 1/ratio)
		for k := range out {
			out[k] *= bp
		}
	}
	return out
}

// bleu returns corpus BLEU-1..4 and per-image BLEU-1..4.
func bleu(stats []bleuStats) ([maxN]float64, [][maxN]float64) {
	per := make([][maxN]float64, len(stats))
	var testlen, reflen int
	var guess, correct [maxN]int
	for i, st := range stats {
		per[i] = bleuScores(st.testlen, st.reflen, st.guess, st.correct)
		testlen += st.testlen
		reflen += st.reflen
		for k := 0; k < maxN; k++ {
			guess[k] += st.guess[k]
			correct[k] += st.correct[k]
		}
	}
	return bleuScores(testlen, reflen, guess, correct), per
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
