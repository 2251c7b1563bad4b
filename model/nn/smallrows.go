package nn

/*
#cgo CFLAGS: -O3
#include <stddef.h>
#include <string.h>

int at_grad_set_enabled(int);

// grad_enabled reads this thread's autograd mode in one call, so the read
// and the restore happen on the same thread.
static int grad_enabled(void) {
	int prev = at_grad_set_enabled(0);
	at_grad_set_enabled(prev);
	return prev;
}

typedef float vf __attribute__((vector_size(64), aligned(4)));
#define VL 16
#define MAXR 8

// xw computes y[r, n0:n1] = b[n0:n1] + x[r, :]·w[:, n0:n1] for the R rows
// of x [R, K]; w is [K, N] and y [R, N], all row-major. w is streamed once,
// eight rows at a time and each row's n0:n1 in order (what the hardware
// prefetcher follows best), into the R output rows, which stay in L1/L2.
static inline __attribute__((always_inline)) void xw_body(const int R, const float *x, long K,
		const float *w, long N, const float *b, float *y, long n0, long n1) {
	for (int r = 0; r < R; r++) {
		if (b) memcpy(y + r * N + n0, b + n0, (n1 - n0) * sizeof(float));
		else memset(y + r * N + n0, 0, (n1 - n0) * sizeof(float));
	}
	long nv = n0 + (n1 - n0) / VL * VL;
	long k = 0;
	for (; k + 8 <= K; k += 8) {
		const float *w0 = w + k * N, *w1 = w0 + N, *w2 = w1 + N, *w3 = w2 + N, *w4 = w3 + N, *w5 = w4 + N, *w6 = w5 + N, *w7 = w6 + N;
		float xs[MAXR][8];
		for (int r = 0; r < R; r++)
			for (int i = 0; i < 8; i++) xs[r][i] = x[r * K + k + i];
		for (long j = n0; j < nv; j += VL) {
			vf v0 = *(const vf *)(w0 + j), v1 = *(const vf *)(w1 + j);
			vf v2 = *(const vf *)(w2 + j), v3 = *(const vf *)(w3 + j);
			vf v4 = *(const vf *)(w4 + j), v5 = *(const vf *)(w5 + j), v6 = *(const vf *)(w6 + j), v7 = *(const vf *)(w7 + j);
			for (int r = 0; r < R; r++) {
				vf *yr = (vf *)(y + r * N + j);
				*yr += ((xs[r][0] * v0 + xs[r][1] * v1) + (xs[r][2] * v2 + xs[r][3] * v3)) + ((xs[r][4] * v4 + xs[r][5] * v5) + (xs[r][6] * v6 + xs[r][7] * v7));
			}
		}
		for (long j = nv; j < n1; j++)
			for (int r = 0; r < R; r++)
				y[r * N + j] += xs[r][0] * w0[j] + xs[r][1] * w1[j] + xs[r][2] * w2[j] + xs[r][3] * w3[j] + xs[r][4] * w4[j] + xs[r][5] * w5[j] + xs[r][6] * w6[j] + xs[r][7] * w7[j];
	}
	for (; k < K; k++) {
		const float *wk = w + k * N;
		for (long j = n0; j < n1; j++)
			for (int r = 0; r < R; r++) y[r * N + j] += x[r * K + k] * wk[j];
	}
}

static inline __attribute__((always_inline)) float hsum(const vf *v) {
	float s = 0;
	for (int i = 0; i < VL; i++) s += (*v)[i];
	return s;
}

// xwt computes y[r, n0:n1] = x[r, :]·w[n0:n1, :]ᵀ for the R rows of x [R, K];
// w is [N, K] (the LM head's wte) and y [R, N]. Four rows of w at a time
// share each load of x.
static inline __attribute__((always_inline)) void xwt_body(const int R, const float *x, long K,
		const float *w, long N, float *y, long n0, long n1) {
	long kv = K - K % VL;
	long n = n0;
	for (; n + 4 <= n1; n += 4) {
		vf a[4][MAXR];
		for (int i = 0; i < 4; i++)
			for (int r = 0; r < R; r++) a[i][r] = (vf){0};
		const float *w0 = w + n * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
		for (long k = 0; k < kv; k += VL) {
			vf v0 = *(const vf *)(w0 + k), v1 = *(const vf *)(w1 + k);
			vf v2 = *(const vf *)(w2 + k), v3 = *(const vf *)(w3 + k);
			for (int r = 0; r < R; r++) {
				vf xv = *(const vf *)(x + r * K + k);
				a[0][r] += xv * v0;
				a[1][r] += xv * v1;
				a[2][r] += xv * v2;
				a[3][r] += xv * v3;
			}
		}
		for (int i = 0; i < 4; i++) {
			const float *wi = w + (n + i) * K;
			for (int r = 0; r < R; r++) {
				float s = hsum(&a[i][r]);
				for (long k = kv; k < K; k++) s += x[r * K + k] * wi[k];
				y[r * N + n + i] = s;
			}
		}
	}
	for (; n < n1; n++) {
		const float *wn = w + n * K;
		for (int r = 0; r < R; r++) {
			float s = 0;
			for (long k = 0; k < K; k++) s += x[r * K + k] * wn[k];
			y[r * N + n] = s;
		}
	}
}

#define XW_CASES(F, ...) \
	switch (R) { \
	case 1: F(1, __VA_ARGS__); break; case 2: F(2, __VA_ARGS__); break; \
	case 3: F(3, __VA_ARGS__); break; case 4: F(4, __VA_ARGS__); break; \
	case 5: F(5, __VA_ARGS__); break; case 6: F(6, __VA_ARGS__); break; \
	case 7: F(7, __VA_ARGS__); break; default: F(8, __VA_ARGS__); break; }

#define DEFINE_KERNELS(SUFFIX, ATTR) \
	ATTR static void xw_##SUFFIX(int R, const float *x, long K, const float *w, long N, \
			const float *b, float *y, long n0, long n1) { \
		XW_CASES(xw_body, x, K, w, N, b, y, n0, n1) \
	} \
	ATTR static void xwt_##SUFFIX(int R, const float *x, long K, const float *w, long N, \
			float *y, long n0, long n1) { \
		XW_CASES(xwt_body, x, K, w, N, y, n0, n1) \
	}

DEFINE_KERNELS(avx512, __attribute__((target("avx512f,avx512vl,avx2,fma"))))
DEFINE_KERNELS(avx2, __attribute__((target("avx2,fma"))))
DEFINE_KERNELS(base, )

static int cpu_level(void) {
	static int level = -1;
	if (level < 0) {
		__builtin_cpu_init();
		level = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") ? 2
			: __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
	}
	return level;
}

static void small_xw(int R, const float *x, long K, const float *w, long N,
		const float *b, float *y, long n0, long n1) {
	switch (cpu_level()) {
	case 2: xw_avx512(R, x, K, w, N, b, y, n0, n1); break;
	case 1: xw_avx2(R, x, K, w, N, b, y, n0, n1); break;
	default: xw_base(R, x, K, w, N, b, y, n0, n1);
	}
}

static void small_xwt(int R, const float *x, long K, const float *w, long N,
		float *y, long n0, long n1) {
	switch (cpu_level()) {
	case 2: xwt_avx512(R, x, K, w, N, y, n0, n1); break;
	case 1: xwt_avx2(R, x, K, w, N, y, n0, n1); break;
	default: xwt_base(R, x, K, w, N, y, n0, n1);
	}
}
*/
import "C"

import (
	"runtime"
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SmallRows is the most rows the small-batch kernels take. OpenBLAS's sgemm
// packs the whole weight matrix whatever the number of rows, which made a
// 5-row product (beam search's step) cost about three times a weight read;
// these kernels stream the weights once and keep the few rows' sums in
// registers. Above a handful of rows gemm's blocking wins.
const SmallRows = 8

// MatmulT returns x·wᵀ for x [R, K] with 2 <= R <= SmallRows and w [N, K]
// (a tied LM head's embedding matrix) using the small-batch kernel, or nil
// where the kernel does not apply (see smallMatmul); neither is freed.
func MatmulT(x, w *ts.Tensor) *ts.Tensor {
	return smallMatmul(x, w, nil, true)
}

// smallMatmul computes x·w + b (w [K, N], b [N] or nil) or, transposed,
// x·wᵀ (w [N, K]) for x [R, K] with R <= SmallRows. It returns nil, leaving
// the work to libtorch, unless every tensor is a float32 CPU tensor with w
// and b contiguous, and autograd has nothing to record: the kernel is
// invisible to it.
func smallMatmul(x, w, b *ts.Tensor, transposed bool) *ts.Tensor {
	xs, ws := x.MustSize(), w.MustSize()
	if len(xs) != 2 || len(ws) != 2 || xs[0] < 1 || xs[0] > SmallRows {
		return nil
	}
	r, k := xs[0], xs[1]
	n, wk := ws[1], ws[0]
	if transposed {
		n, wk = ws[0], ws[1]
	}
	if wk != k || !plainFloat(w) || !plainFloat(x) || (b != nil && (!plainFloat(b) || b.MustSize()[0] != n)) {
		return nil
	}
	if (x.MustRequiresGrad() || w.MustRequiresGrad() || (b != nil && b.MustRequiresGrad())) && C.grad_enabled() != 0 {
		return nil
	}
	xc := x.MustContiguous(false)
	y := ts.MustEmpty([]int64{r, n}, gotch.Float, gotch.CPU)
	xp, wp, yp := (*C.float)(xc.MustDataPtr()), (*C.float)(w.MustDataPtr()), (*C.float)(y.MustDataPtr())
	var bp *C.float
	if b != nil {
		bp = (*C.float)(b.MustDataPtr())
	}
	align := int64(32) // whole 32-column strips per worker
	if transposed {
		align = 4
	}
	parallelRange(n, align, k*n, func(n0, n1 int64) {
		if transposed {
			C.small_xwt(C.int(r), xp, C.long(k), wp, C.long(n), yp, C.long(n0), C.long(n1))
		} else {
			C.small_xw(C.int(r), xp, C.long(k), wp, C.long(n), bp, yp, C.long(n0), C.long(n1))
		}
	})
	runtime.KeepAlive(w)
	runtime.KeepAlive(b)
	xc.MustDrop()
	return y
}

// plainFloat reports whether t is a contiguous float32 CPU tensor.
func plainFloat(t *ts.Tensor) bool {
	return t.DType() == gotch.Float && !t.MustDevice().IsCuda() && t.MustIsContiguous()
}

// parallelRange splits [0, n) into one piece per CPU (pieces a multiple of
// align) and runs f on them concurrently; work (multiply-adds per row) below
// a weight matrix of 64K elements runs on the calling goroutine.
func parallelRange(n, align, work int64, f func(n0, n1 int64)) {
	workers := int64(runtime.GOMAXPROCS(0))
	if workers > 8 {
		workers = 8
	}
	if work < 1<<16 || workers < 2 || n < 2*align {
		f(0, n)
		return
	}
	per := (n + workers - 1) / workers
	per = (per + align - 1) / align * align
	var wg sync.WaitGroup
	for n0 := per; n0 < n; n0 += per {
		n1 := n0 + per
		if n1 > n {
			n1 = n
		}
		wg.Add(1)
		go func(n0, n1 int64) {
			defer wg.Done()
			f(n0, n1)
		}(n0, n1)
	}
	f(0, min(per, n))
	wg.Wait()
}
