package nn

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func rowsOf(t *ts.Tensor) []float32 {
	c := t.MustContiguous(false)
	out := append([]float32(nil), unsafe.Slice((*float32)(c.MustDataPtr()), c.Numel())...)
	c.MustDrop()
	return out
}

func maxDiff(a, b []float32) (d, scale float64) {
	for i := range a {
		d = max(d, abs64(float64(a[i]-b[i])))
		scale = max(scale, abs64(float64(b[i])))
	}
	return d, scale
}

func abs64(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// The decoding step's row operations compute what libtorch computes: layer
// norm, GELU's tanh form, and one position's attention over a cache
// (softmax(q·Kᵀ/√hd)·V with the new key and value written at pos), to
// float32 rounding; wrong lengths are errors naming the sizes.
func TestRowOpsMatchLibtorch(t *testing.T) {
	const rows, d = 3, 40
	x := ts.MustRandn([]int64{rows, d}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(3), true)
	defer x.MustDrop()
	g := ts.MustRandn([]int64{d}, gotch.Float, gotch.CPU)
	defer g.MustDrop()
	b := ts.MustRandn([]int64{d}, gotch.Float, gotch.CPU)
	defer b.MustDrop()

	want := ts.MustLayerNorm(x, []int64{d}, g, b, 1e-5, false)
	got := make([]float32, rows*d)
	if err := LayerNormRows(rowsOf(x), got, d, rowsOf(g), rowsOf(b), 1e-5); err != nil {
		t.Fatal(err)
	}
	if e, s := maxDiff(got, rowsOf(want)); e > 1e-5*s {
		t.Errorf("layer norm: differs by %g (largest %g)", e, s)
	}
	want.MustDrop()

	want = x.MustGelu("tanh", false)
	gl := rowsOf(x)
	GeluTanhRows(gl)
	if e, s := maxDiff(gl, rowsOf(want)); e > 1e-5*s {
		t.Errorf("gelu: differs by %g (largest %g)", e, s)
	}
	want.MustDrop()

	// Attention: 2 rows, 2 heads of 4, a cache of 6 positions, the new one at 3.
	const r, heads, hd, maxLen, pos = 2, 2, 4, 6, 3 // untyped: shapes and lengths
	const e = heads * hd
	kc := ts.MustRandn([]int64{r, heads, maxLen, hd}, gotch.Float, gotch.CPU)
	vc := ts.MustRandn([]int64{r, heads, maxLen, hd}, gotch.Float, gotch.CPU)
	qkv := ts.MustRandn([]int64{r, 3 * e}, gotch.Float, gotch.CPU)
	defer func() { kc.MustDrop(); vc.MustDrop(); qkv.MustDrop() }()
	k, v, ctx := rowsOf(kc), rowsOf(vc), make([]float32, r*e)
	if err := AttendCached(rowsOf(qkv), k, v, ctx, heads, hd, maxLen, pos); err != nil {
		t.Fatal(err)
	}
	parts := qkv.MustSplit(e, 1, false)
	split := func(z *ts.Tensor) *ts.Tensor { return z.MustView([]int64{r, heads, 1, hd}, false) }
	q, nk, nv := split(parts[0]), split(parts[1]), split(parts[2])
	keys := ts.MustCat([]*ts.Tensor{kc.MustNarrow(2, 0, pos, false), nk}, 2)
	vals := ts.MustCat([]*ts.Tensor{vc.MustNarrow(2, 0, pos, false), nv}, 2)
	kt := keys.MustTranspose(2, 3, false)
	scores := q.MustMatmul(kt, false).MustDivScalar(ts.FloatScalar(2), true) // √hd = 2
	probs := scores.MustSoftmax(-1, gotch.Float, true)
	ref := probs.MustMatmul(vals, true).MustTranspose(1, 2, true).MustReshape([]int64{r, e}, true)
	if e, s := maxDiff(ctx, rowsOf(ref)); e > 1e-5*s {
		t.Errorf("attention: differs by %g (largest %g)", e, s)
	}
	// The new key and value are in the cache at pos; the rest is untouched.
	newK := rowsOf(nk)
	kcBefore := rowsOf(kc)
	for row := 0; row < r; row++ {
		for h := 0; h < heads; h++ {
			base := ((row*heads+h)*maxLen + pos) * hd
			for i := 0; i < hd; i++ {
				if k[base+i] != newK[(row*heads+h)*hd+i] {
					t.Fatalf("attention: cached key row %d head %d not written at position %d", row, h, pos)
				}
			}
			other := ((row*heads+h)*maxLen + pos + 1) * hd
			if k[other] != kcBefore[other] {
				t.Fatalf("attention: position %d of the cache changed", pos+1)
			}
		}
	}
	ref.MustDrop()
	kt.MustDrop()
	keys.MustDrop()
	vals.MustDrop()
	for _, p := range parts {
		p.MustDrop()
	}

	for name, err := range map[string]error{
		"layer norm": LayerNormRows(make([]float32, 7), make([]float32, 7), 4, make([]float32, 4), make([]float32, 4), 1e-5),
		"add":        AddRows(make([]float32, 3), make([]float32, 4)),
		"attend":     AttendCached(make([]float32, 3*e), make([]float32, e*maxLen), make([]float32, e*maxLen), make([]float32, e), heads, hd, maxLen, maxLen),
	} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s with wrong sizes: error %v", name, err)
		}
	}
}
