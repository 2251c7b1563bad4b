package train

/*
#include <immintrin.h>

// adamw_span applies AdamW.Step's update to n elements: m and v move towards
// g, p steps by ss·m/(sqrt(v)+eps), then scales by decay (1 - lr·weight_decay,
// or exactly 1). One pass over p, g, m and v instead of libtorch's eight
// kernels with their temporaries. AVX-512 only (callers check): the tail
// is a masked vector too, so every element sees the same float32 sequence.
__attribute__((target("avx512f")))
static void adamw_span(float *p, const float *g, float *m, float *v, long n,
		float w1, float b2, float c2, float eps, float ss, float decay) {
	const __m512 W1 = _mm512_set1_ps(w1), B2 = _mm512_set1_ps(b2), C2 = _mm512_set1_ps(c2);
	const __m512 EPS = _mm512_set1_ps(eps), SS = _mm512_set1_ps(ss), DECAY = _mm512_set1_ps(decay);
	for (long i = 0; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		__m512 gi = _mm512_maskz_loadu_ps(k, g + i), mi = _mm512_maskz_loadu_ps(k, m + i);
		__m512 vi = _mm512_maskz_loadu_ps(k, v + i), pi = _mm512_maskz_loadu_ps(k, p + i);
		mi = _mm512_add_ps(mi, _mm512_mul_ps(W1, _mm512_sub_ps(gi, mi)));
		vi = _mm512_add_ps(_mm512_mul_ps(vi, B2), _mm512_mul_ps(_mm512_mul_ps(gi, C2), gi));
		__m512 d = _mm512_add_ps(_mm512_sqrt_ps(vi), EPS);
		pi = _mm512_mul_ps(_mm512_sub_ps(pi, _mm512_div_ps(_mm512_mul_ps(SS, mi), d)), DECAY);
		_mm512_mask_storeu_ps(m + i, k, mi);
		_mm512_mask_storeu_ps(v + i, k, vi);
		_mm512_mask_storeu_ps(p + i, k, pi);
	}
}
*/
import "C"

import (
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"golang.org/x/sys/cpu"
)

// spanElems is the unit of work the fused step hands to a thread: big
// enough that a cgo call is noise, small enough to balance two threads.
const spanElems = 1 << 16

// fusedSpan is one run of a parameter's elements and its update's scalars.
type fusedSpan struct {
	p, g, m, v        unsafe.Pointer
	n                 int
	w1, b2, c2, eps   float32
	stepSize, decayBy float32
}

// hasAVX512 gates the fused kernel; other CPUs keep libtorch's ops.
var hasAVX512 = cpu.X86.HasAVX512F

// fusable reports whether the fused kernel can update this parameter: the
// CPU has AVX-512 and its tensor, gradient and moments are contiguous
// float32 in CPU memory.
func fusable(ts ...*ts.Tensor) bool {
	if !hasAVX512 {
		return false
	}
	for _, t := range ts {
		if t.MustDevice().IsCuda() || t.DType() != gotch.Float || !t.MustIsContiguous() {
			return false
		}
	}
	return true
}

// addSpans appends the spans of parameter i's fused update.
func (o *AdamW) addSpans(spans []fusedSpan, i int, g *ts.Tensor, lr, stepSize float64) []fusedSpan {
	p, m, v := o.params[i].Tensor, o.expAvg[i], o.expAvgSq[i]
	base := fusedSpan{w1: float32(1 - o.Beta1), b2: float32(o.Beta2), c2: float32(1 - o.Beta2), eps: float32(o.Eps),
		stepSize: float32(stepSize), decayBy: 1}
	if o.WeightDecay > 0 {
		base.decayBy = float32(1 - lr*o.WeightDecay)
	}
	n := int(p.Numel())
	pp, gp, mp, vp := p.MustDataPtr(), g.MustDataPtr(), m.MustDataPtr(), v.MustDataPtr()
	for off := 0; off < n; off += spanElems {
		s := base
		s.n = min(spanElems, n-off)
		s.p, s.g = unsafe.Add(pp, 4*off), unsafe.Add(gp, 4*off)
		s.m, s.v = unsafe.Add(mp, 4*off), unsafe.Add(vp, 4*off)
		spans = append(spans, s)
	}
	return spans
}

// runSpans updates every span on up to threads goroutines.
func runSpans(spans []fusedSpan, threads int) {
	workers := min(max(1, threads), max(1, len(spans)))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(spans) {
					return
				}
				s := &spans[k]
				C.adamw_span((*C.float)(s.p), (*C.float)(s.g), (*C.float)(s.m), (*C.float)(s.v), C.long(s.n),
					C.float(s.w1), C.float(s.b2), C.float(s.c2), C.float(s.eps), C.float(s.stepSize), C.float(s.decayBy))
			}
		}()
	}
	wg.Wait()
}

// stepSize is HF AdamW's bias-corrected step size at step t.
func (o *AdamW) stepSize(lr float64, t int64) float64 {
	return lr * math.Sqrt(1-math.Pow(o.Beta2, float64(t))) / (1 - math.Pow(o.Beta1, float64(t)))
}
