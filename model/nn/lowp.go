package nn

/*
#cgo CFLAGS: -O3 -Wno-psabi
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

// Weight-only low-precision products for inference: weights stored as bf16
// or as int8 with one scale per output channel, activations and sums in
// float32. Decoding reads every weight once per token, so its speed is the
// bytes read: 2 (bf16) or 1 (int8) per weight instead of 4. Each weight
// vector is widened to float32 in registers (int8: sign-extend + convert;
// bf16: a 16-bit shift) and fused-multiply-added; the per-channel scale and
// the bias are applied once per output at the end.

typedef float lvf __attribute__((vector_size(64), aligned(4)));
typedef int8_t lvq __attribute__((vector_size(16), aligned(1)));
typedef uint16_t lvh __attribute__((vector_size(32), aligned(2)));
typedef uint32_t lvu __attribute__((vector_size(64), aligned(4)));
#define LVL 16
#define LMAXR 8

// Loads of 16 weights widened to float32: portable C (GCC's generic
// vectors), AVX2 (two 8-lane halves) and AVX-512 (sign/zero-extend, then
// convert or shift), written with intrinsics where generic conversions
// compile to scalar code.
static inline __attribute__((always_inline)) lvf ld_q(const int8_t *p) { return __builtin_convertvector(*(const lvq *)p, lvf); }
static inline __attribute__((always_inline)) lvf ld_h(const uint16_t *p) {
	lvu u = __builtin_convertvector(*(const lvh *)p, lvu) << 16;
	return (lvf)u;
}
#define LPT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define LPT256 __attribute__((target("avx2,fma")))
#define LP512 __attribute__((always_inline)) LPT512
#define LP256 __attribute__((always_inline)) LPT256
static inline LP512 lvf ld_q512(const int8_t *p) {
	return (lvf)_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
static inline LP512 lvf ld_h512(const uint16_t *p) {
	return (lvf)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16);
}
typedef union { __m256 h[2]; lvf v; } lp_pair;
static inline LP256 lvf ld_q256(const int8_t *p) {
	lp_pair u;
	u.h[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
	u.h[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8))));
	return u.v;
}
static inline LP256 lvf ld_h256(const uint16_t *p) {
	lp_pair u;
	u.h[0] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
	u.h[1] = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 8))), 16));
	return u.v;
}
static inline __attribute__((always_inline)) float sc_q(const int8_t *p) { return (float)*p; }
static inline __attribute__((always_inline)) float sc_h(const uint16_t *p) {
	uint32_t u = (uint32_t)*p << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

// epilogue: y[r, n0:n1] = y·s + b (s, b optional).
static inline __attribute__((always_inline)) void lp_epilogue(int R, float *y, long N, const float *s, const float *b, long n0, long n1) {
	if (!s && !b) return;
	for (int r = 0; r < R; r++)
		for (long j = n0; j < n1; j++) {
			float v = y[r * N + j];
			if (s) v *= s[j];
			if (b) v += b[j];
			y[r * N + j] = v;
		}
}

// XW: y[r, n0:n1] = (x[r, :]·w[:, n0:n1])·s + b for w [K, N] (Conv1D's
// layout), streaming w four rows at a time, each row's n0:n1 in order.
#define LP_XW_BODY(NAME, T, LD, SC, ATTR) \
static inline __attribute__((always_inline)) ATTR void NAME(const int R, const float *x, long K, const T *w, long N, \
		const float *s, const float *b, float *y, long n0, long n1) { \
	for (int r = 0; r < R; r++) memset(y + r * N + n0, 0, (n1 - n0) * sizeof(float)); \
	long nv = n0 + (n1 - n0) / LVL * LVL; \
	long k = 0; \
	for (; k + 4 <= K; k += 4) { \
		const T *w0 = w + k * N, *w1 = w0 + N, *w2 = w1 + N, *w3 = w2 + N; \
		float xs[LMAXR][4]; \
		for (int r = 0; r < R; r++) \
			for (int i = 0; i < 4; i++) xs[r][i] = x[r * K + k + i]; \
		for (long j = n0; j < nv; j += LVL) { \
			lvf v0 = LD(w0 + j), v1 = LD(w1 + j), v2 = LD(w2 + j), v3 = LD(w3 + j); \
			for (int r = 0; r < R; r++) { \
				lvf *yr = (lvf *)(y + r * N + j); \
				*yr += (xs[r][0] * v0 + xs[r][1] * v1) + (xs[r][2] * v2 + xs[r][3] * v3); \
			} \
		} \
		for (long j = nv; j < n1; j++) \
			for (int r = 0; r < R; r++) \
				y[r * N + j] += xs[r][0] * SC(w0 + j) + xs[r][1] * SC(w1 + j) + xs[r][2] * SC(w2 + j) + xs[r][3] * SC(w3 + j); \
	} \
	for (; k < K; k++) \
		for (long j = n0; j < n1; j++) \
			for (int r = 0; r < R; r++) y[r * N + j] += x[r * K + k] * SC(w + k * N + j); \
	lp_epilogue(R, y, N, s, b, n0, n1); \
}

// XWT: y[r, n0:n1] = (x[r, :]·w[n0:n1, :]ᵀ)·s + b for w [N, K] (Linear's
// and the tied LM head's layout), four rows of w sharing each load of x.
#define LP_XWT_BODY(NAME, T, LD, SC, ATTR) \
static inline __attribute__((always_inline)) ATTR void NAME(const int R, const float *x, long K, const T *w, long N, \
		const float *s, const float *b, float *y, long n0, long n1) { \
	long kv = K - K % LVL; \
	long n = n0; \
	for (; n + 4 <= n1; n += 4) { \
		lvf a[4][LMAXR]; \
		for (int i = 0; i < 4; i++) \
			for (int r = 0; r < R; r++) a[i][r] = (lvf){0}; \
		const T *w0 = w + n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K; \
		for (long k = 0; k < kv; k += LVL) { \
			lvf v0 = LD(w0 + k), v1 = LD(w1 + k), v2 = LD(w2 + k), v3 = LD(w3 + k); \
			for (int r = 0; r < R; r++) { \
				lvf xv = *(const lvf *)(x + r * K + k); \
				a[0][r] += xv * v0; \
				a[1][r] += xv * v1; \
				a[2][r] += xv * v2; \
				a[3][r] += xv * v3; \
			} \
		} \
		for (int i = 0; i < 4; i++) { \
			const T *wi = w + (n + i) * K; \
			for (int r = 0; r < R; r++) { \
				float acc = 0; \
				for (int l = 0; l < LVL; l++) acc += a[i][r][l]; \
				for (long k = kv; k < K; k++) acc += x[r * K + k] * SC(wi + k); \
				y[r * N + n + i] = acc; \
			} \
		} \
	} \
	for (; n < n1; n++) { \
		const T *wn = w + n * K; \
		for (int r = 0; r < R; r++) { \
			float acc = 0; \
			for (long k = 0; k < K; k++) acc += x[r * K + k] * SC(wn + k); \
			y[r * N + n] = acc; \
		} \
	} \
	lp_epilogue(R, y, N, s, b, n0, n1); \
}

#define LP_BODIES(SUF, LDQ, LDH, ATTR) \
	LP_XW_BODY(xw_q_body_##SUF, int8_t, LDQ, sc_q, ATTR) \
	LP_XW_BODY(xw_h_body_##SUF, uint16_t, LDH, sc_h, ATTR) \
	LP_XWT_BODY(xwt_q_body_##SUF, int8_t, LDQ, sc_q, ATTR) \
	LP_XWT_BODY(xwt_h_body_##SUF, uint16_t, LDH, sc_h, ATTR)
LP_BODIES(avx512, ld_q512, ld_h512, LPT512)
LP_BODIES(avx2, ld_q256, ld_h256, LPT256)
LP_BODIES(base, ld_q, ld_h, )

#define LP_CASES(F, ...) \
	switch (R) { \
	case 1: F(1, __VA_ARGS__); break; case 2: F(2, __VA_ARGS__); break; \
	case 3: F(3, __VA_ARGS__); break; case 4: F(4, __VA_ARGS__); break; \
	case 5: F(5, __VA_ARGS__); break; case 6: F(6, __VA_ARGS__); break; \
	case 7: F(7, __VA_ARGS__); break; default: F(8, __VA_ARGS__); break; }

#define LP_DEFINE(SUFFIX, ATTR) \
	ATTR static void lp_xw_q_##SUFFIX(int R, const float *x, long K, const int8_t *w, long N, const float *s, const float *b, float *y, long n0, long n1) { \
		LP_CASES(xw_q_body_##SUFFIX, x, K, w, N, s, b, y, n0, n1) } \
	ATTR static void lp_xw_h_##SUFFIX(int R, const float *x, long K, const uint16_t *w, long N, const float *s, const float *b, float *y, long n0, long n1) { \
		LP_CASES(xw_h_body_##SUFFIX, x, K, w, N, s, b, y, n0, n1) } \
	ATTR static void lp_xwt_q_##SUFFIX(int R, const float *x, long K, const int8_t *w, long N, const float *s, const float *b, float *y, long n0, long n1) { \
		LP_CASES(xwt_q_body_##SUFFIX, x, K, w, N, s, b, y, n0, n1) } \
	ATTR static void lp_xwt_h_##SUFFIX(int R, const float *x, long K, const uint16_t *w, long N, const float *s, const float *b, float *y, long n0, long n1) { \
		LP_CASES(xwt_h_body_##SUFFIX, x, K, w, N, s, b, y, n0, n1) }

LP_DEFINE(avx512, LPT512)
LP_DEFINE(avx2, LPT256)
LP_DEFINE(base, )

// lp_level: 2 AVX-512, 1 AVX2+FMA, 0 portable C; lp_force (tests) caps it.
// Level 3, the packed dot-product kernels of lowp_packed.go, is chosen when
// the weights are converted (see packable).
static int lp_force = 3;
static int lp_level(void) {
	static int level = -1;
	if (level < 0) {
		__builtin_cpu_init();
		level = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") ? 2
			: __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
	}
	return level < lp_force ? level : lp_force;
}
static int lp_set_force(int l) { lp_force = l; return lp_level(); }
static int lp_forced(void) { return lp_force; }

// lp_run computes all rows of x [R, K] over columns n0:n1, eight rows per
// pass over the weights. kind: 0 int8, 1 bf16; t: w is [N, K].
static void lp_run(int kind, int t, int R, const float *x, long K, const void *w, long N,
		const float *s, const float *b, float *y, long n0, long n1) {
	int level = lp_level();
	for (int r0 = 0; r0 < R; r0 += LMAXR) {
		int rr = R - r0 < LMAXR ? R - r0 : LMAXR;
		const float *xr = x + (long)r0 * K;
		float *yr = y + (long)r0 * N;
#define LP_GO(SUF) \
		if (kind == 0 && !t) lp_xw_q_##SUF(rr, xr, K, w, N, s, b, yr, n0, n1); \
		else if (kind == 0) lp_xwt_q_##SUF(rr, xr, K, w, N, s, b, yr, n0, n1); \
		else if (!t) lp_xw_h_##SUF(rr, xr, K, w, N, s, b, yr, n0, n1); \
		else lp_xwt_h_##SUF(rr, xr, K, w, N, s, b, yr, n0, n1);
		switch (level) {
		case 2: LP_GO(avx512) break;
		case 1: LP_GO(avx2) break;
		default: LP_GO(base)
		}
#undef LP_GO
	}
}
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Precision is how inference stores weights.
type Precision string

const (
	FP32 Precision = "fp32"
	BF16 Precision = "bf16" // bfloat16 weights, float32 sums
	Int8 Precision = "int8" // int8 weights, one float32 scale per output channel
)

// ParsePrecision reads fp32, bf16 or int8 ("" is fp32).
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case "", FP32:
		return FP32, nil
	case BF16, Int8:
		return p, nil
	}
	return "", fmt.Errorf("precision %q: want fp32, bf16 or int8", s)
}

// LowP is a weight matrix held in bf16 or int8 for inference (CPU only).
// It computes x·W (+ b) for the matrix W [K, N] it was made from, in either
// storage layout: [K, N] (Conv1D) or transposed [N, K] (Linear, LM head).
type LowP struct {
	Prec       Precision
	K, N       int64
	Transposed bool      // stored [N, K]
	Q          []int8    // int8 weights
	H          []uint16  // bf16 weights
	Scale      []float32 // int8: per output channel (N)

	// packed: Q or H hold the dot-product layout of lowp_packed.go (only
	// for the [N, K] layout); colsum and padScale serve its int8 kernel.
	packed   bool
	colsum   []int32
	padScale []float32
}

// NewLowP converts w (float32; [K, N], or [N, K] when transposed) to p.
// int8 is symmetric per output channel: scale = max|w| / 127 over the
// channel's K weights, q = round(w / scale). bf16 rounds to nearest even.
func NewLowP(w *ts.Tensor, transposed bool, p Precision) (*LowP, error) {
	conversions.Add(1) // lowp_raw.go
	shape := w.MustSize()
	if len(shape) != 2 || w.DType() != gotch.Float {
		return nil, fmt.Errorf("low precision: want a 2-D float32 weight, got %v %v", shape, w.DType())
	}
	l := &LowP{Prec: p, K: shape[0], N: shape[1], Transposed: transposed}
	if transposed {
		l.K, l.N = shape[1], shape[0]
	}
	if p != BF16 && p != Int8 {
		return nil, fmt.Errorf("low precision: %q is not bf16 or int8", p)
	}
	c := w.MustTo(gotch.CPU, false).MustContiguous(true)
	defer c.MustDrop()
	// Read the tensor's memory in place: gotch's CopyData checks the
	// destination element by element through reflection (seconds for
	// GPT-2's 124M weights).
	vals := unsafe.Slice((*float32)(c.MustDataPtr()), shape[0]*shape[1])
	if p == BF16 {
		l.H = make([]uint16, len(vals))
		for i, v := range vals {
			l.H[i] = toBF16(v)
		}
		runtime.KeepAlive(c)
		if transposed && packable(p) {
			l.pack()
		}
		return l, nil
	}
	l.Q = make([]int8, len(vals))
	l.Scale = make([]float32, l.N)
	inv := make([]float32, l.N)
	rowsOf := func(f func(row []float32, qrow []int8, first int64)) { // storage rows
		width := shape[1]
		for r := int64(0); r < shape[0]; r++ {
			f(vals[r*width:(r+1)*width], l.Q[r*width:(r+1)*width], r)
		}
	}
	if transposed { // a storage row is an output channel
		rowsOf(func(row []float32, _ []int8, n int64) {
			for _, v := range row {
				l.Scale[n] = max(l.Scale[n], abs32(v))
			}
		})
	} else { // a storage row holds one input's weight for every channel
		rowsOf(func(row []float32, _ []int8, _ int64) {
			for n, v := range row {
				l.Scale[n] = max(l.Scale[n], abs32(v))
			}
		})
	}
	for n, m := range l.Scale {
		l.Scale[n] = m / 127
		if m == 0 {
			l.Scale[n] = 1
		}
		inv[n] = 1 / l.Scale[n]
	}
	// Adding and removing 1.5·2²³ rounds a float32 of magnitude below 2²²
	// to the nearest integer, ties to even, without a function call.
	const magic = 12582912
	quant := func(v, inv float32) int8 { return int8(max(-127, min(127, float32(v*inv+magic)-magic))) }
	rowsOf(func(row []float32, qrow []int8, r int64) {
		if transposed {
			for i, v := range row {
				qrow[i] = quant(v, inv[r])
			}
			return
		}
		for i, v := range row {
			qrow[i] = quant(v, inv[i])
		}
	})
	runtime.KeepAlive(c)
	if transposed && packable(p) {
		l.pack()
	}
	return l, nil
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// toBF16 rounds to the nearest bfloat16, ties to even.
func toBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN stays NaN
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// Bytes is the weights' size in memory, what one product reads.
func (l *LowP) Bytes() int64 {
	return int64(len(l.Q)) + 2*int64(len(l.H)) + 4*int64(len(l.Scale))
}

// Dequantized returns the weights back as float32 in their stored layout
// (what the kernels multiply with, for tests and export).
func (l *LowP) Dequantized() *ts.Tensor {
	shape := []int64{l.K, l.N}
	if l.Transposed {
		shape = []int64{l.N, l.K}
	}
	vals := make([]float32, l.K*l.N)
	q, h := l.unpacked()
	for i := range vals {
		switch l.Prec {
		case BF16:
			vals[i] = math.Float32frombits(uint32(h[i]) << 16)
		case Int8:
			n := int64(i) % l.N
			if l.Transposed {
				n = int64(i) / l.K
			}
			vals[i] = float32(q[i]) * l.Scale[n]
		}
	}
	return ts.MustOfSlice(vals).MustView(shape, true)
}

// Forward computes x·W + b for x [..., K] (float32 on the CPU; not freed)
// and b [N] or nil, returning [..., N].
func (l *LowP) Forward(x, b *ts.Tensor) *ts.Tensor {
	shape := x.MustSize()
	if shape[len(shape)-1] != l.K {
		panic(fmt.Sprintf("low precision product: input width %d, weight expects %d", shape[len(shape)-1], l.K))
	}
	r := rows(shape)
	outShape := append(append([]int64{}, shape[:len(shape)-1]...), l.N)
	xc := x.MustContiguous(false)
	if xc.DType() != gotch.Float {
		xc = xc.MustTotype(gotch.Float, true)
	}
	y := ts.MustEmpty([]int64{r, l.N}, gotch.Float, gotch.CPU)
	var bp *C.float
	var bc *ts.Tensor
	if b != nil {
		bc = b.MustContiguous(false)
		bp = (*C.float)(bc.MustDataPtr())
	}
	l.mul(r, (*C.float)(xc.MustDataPtr()), bp, (*C.float)(y.MustDataPtr()))
	runtime.KeepAlive(l)
	xc.MustDrop()
	if bc != nil {
		bc.MustDrop()
	}
	return y.MustView(outShape, true)
}

// mul computes y [r, N] = x [r, K]·W + b (b nil or [N]) with the kernels
// the weights were converted for.
func (l *LowP) mul(r int64, xp, bp, yp *C.float) {
	if r == 0 {
		return
	}
	if l.packed {
		l.mulPacked(r, xp, bp, yp)
		runtime.KeepAlive(l)
		return
	}
	var wp unsafe.Pointer
	kind := C.int(1)
	if l.Prec == Int8 {
		kind, wp = 0, unsafe.Pointer(&l.Q[0])
	} else {
		wp = unsafe.Pointer(&l.H[0])
	}
	var sp *C.float
	if l.Scale != nil {
		sp = (*C.float)(unsafe.Pointer(&l.Scale[0]))
	}
	t := C.int(0)
	align := int64(32)
	if l.Transposed {
		t, align = 1, 4
	}
	parallelRange(l.N, align, r*l.K*l.N/4, func(n0, n1 int64) {
		C.lp_run(kind, t, C.int(r), xp, C.long(l.K), wp, C.long(l.N), sp, bp, yp, C.long(n0), C.long(n1))
	})
	runtime.KeepAlive(l)
}

// lowPLevel caps the kernels' instruction set (2 AVX-512, 1 AVX2, 0
// portable C) and returns the level in use; for tests.
func lowPForced() int { return int(C.lp_forced()) }

func lowPLevel(cap int) int {
	level := int(C.lp_set_force(C.int(cap)))
	if cap >= 3 && (hasVNNI || hasBF16Dp) {
		return 3
	}
	return level
}
