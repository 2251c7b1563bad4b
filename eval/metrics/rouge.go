package metrics

// rougeBeta weighs recall over precision in ROUGE-L's F-measure (the value
// pycocoevalcap settled on).
const rougeBeta = 1.2

// rougeL scores one candidate against its references as pycocoevalcap's
// Rouge.calc_score: the best LCS precision and the best LCS recall over the
// references (each maximised separately), combined into an F-measure.
// lcsRow is scratch space, grown as needed.
func rougeL(cand []int32, refs [][]int32, lcsRow *[]int) float64 {
	var precMax, recMax float64
	for _, r := range refs {
		l := float64(lcs(cand, r, lcsRow))
		if p := l / float64(len(cand)); p > precMax {
			precMax = p
		}
		if rc := l / float64(len(r)); rc > recMax {
			recMax = rc
		}
	}
	if precMax == 0 || recMax == 0 {
		return 0
	}
	b2 := rougeBeta * rougeBeta
	return ((1 + b2) * precMax * recMax) / (recMax + b2*precMax)
}

// lcs is the length of the longest common subsequence of a and b.
func lcs(a, b []int32, row *[]int) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	// One row over the shorter sequence; prev holds the diagonal.
	if cap(*row) < len(b)+1 {
		*row = make([]int, len(b)+1)
	}
	dp := (*row)[:len(b)+1]
	clear(dp)
	for _, x := range a {
		prev := 0
		for j, y := range b {
			cur := dp[j+1]
			if x == y {
				dp[j+1] = prev + 1
			} else if dp[j] > cur {
				dp[j+1] = dp[j]
			}
			prev = cur
		}
	}
	return dp[len(b)]
}
