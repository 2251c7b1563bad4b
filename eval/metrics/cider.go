package metrics

import "math"

// ciderSigma is the width of CIDEr-D's Gaussian length penalty.
const ciderSigma = 6.0

// tfidf is a caption's CIDEr-D vector: per n-gram weights (same order as the
// sentence's grams), per-order norms, and its "length".
type tfidf struct {
	w    []float64
	norm [maxN]float64
	// length counts bigrams, not words: pycocoevalcap adds term frequencies
	// where its 0-based order index is 1. We keep the quirk; it is what the
	// length penalty has always measured.
	length int
}

// ciderDF counts, for every n-gram, the images whose references contain it.
func ciderDF(refs [][]sentence, ngrams int) []float64 {
	df := make([]float64, ngrams)
	seen := make([]int32, ngrams) // last image (1-based) that counted the n-gram
	for img, rs := range refs {
		stamp := int32(img + 1)
		for _, r := range rs {
			for _, g := range r.grams {
				if seen[g.id] != stamp {
					seen[g.id] = stamp
					df[g.id]++
				}
			}
		}
	}
	return df
}

func ciderVec(s sentence, df []float64, refLen float64) tfidf {
	v := tfidf{w: make([]float64, len(s.grams))}
	var sq [maxN]float64
	for i, g := range s.grams {
		// An n-gram absent from every reference gets document frequency 1.
		w := float64(g.count) * (refLen - math.Log(max(1.0, df[g.id])))
		v.w[i] = w
		sq[g.order] += w * w
		if g.order == 1 {
			v.length += int(g.count)
		}
	}
	for n := range sq {
		v.norm[n] = math.Sqrt(sq[n])
	}
	return v
}

// ciderSim is pycocoevalcap's sim(): per order, the clipped dot product
// sum(min(h, r) * r) over the candidate's n-grams, cosine-normalised, times
// the Gaussian penalty on the length difference.
func ciderSim(h sentence, hv tfidf, r sentence, rv tfidf) [maxN]float64 {
	var val [maxN]float64
	j := 0
	for i, g := range h.grams {
		for j < len(r.grams) && r.grams[j].id < g.id {
			j++
		}
		if j < len(r.grams) && r.grams[j].id == g.id {
			wr := rv.w[j]
			val[g.order] += min(hv.w[i], wr) * wr
		}
	}
	delta := float64(hv.length - rv.length)
	pen := math.Exp(-(delta * delta) / (2 * ciderSigma * ciderSigma))
	for n := range val {
		if hv.norm[n] != 0 && rv.norm[n] != 0 {
			val[n] /= hv.norm[n] * rv.norm[n]
		}
		val[n] *= pen
	}
	return val
}

// cider returns per-image CIDEr-D: the mean over orders of the similarity
// summed over references, divided by the reference count, times 10.
// Document frequencies come from the evaluated references themselves and
// the IDF base is the number of images, as in the toolkit.
func cider(cands []sentence, refs [][]sentence, ngrams int) []float64 {
	df := ciderDF(refs, ngrams)
	refLen := math.Log(float64(len(refs)))
	out := make([]float64, len(cands))
	parallel(len(cands), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c := cands[i]
			cv := ciderVec(c, df, refLen)
			var score [maxN]float64
			for _, r := range refs[i] {
				s := ciderSim(c, cv, r, ciderVec(r, df, refLen))
				for n := range score {
					score[n] += s[n]
				}
			}
			avg := (((score[0] + score[1]) + score[2]) + score[3]) / maxN
			out[i] = avg / float64(len(refs[i])) * 10
		}
	})
	return out
}

// mean is np.mean's value to within rounding.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return pairwiseSum(xs) / float64(len(xs))
}

// pairwiseSum adds like numpy (pairwise, blocks of 8 below 128 elements),
// which keeps corpus means within an ulp or two of the toolkit's.
func pairwiseSum(xs []float64) float64 {
	n := len(xs)
	switch {
	case n < 8:
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], xs[:8])
		i := 8
		for ; i+8 <= n; i += 8 {
			for k := 0; k < 8; k++ {
				r[k] += xs[i+k]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += xs[i]
		}
		return s
	default:
		m := n / 2
		m -= m % 8
		return pairwiseSum(xs[:m]) + pairwiseSum(xs[m:])
	}
}
