package nn

/*
#cgo CFLAGS: -O3 -Wno-psabi
#cgo LDFLAGS: -lpthread
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

// Dot-product kernels for the packed low-precision layouts. The widening
// kernels of lowp.go spend three vector instructions on every 16 weights
// (widen, convert, multiply-add), which keeps them compute-bound on two
// cores. AVX512_VNNI's vpdpbusd multiplies 64 int8 weights by 64 uint8
// activations and adds them into 16 int32 sums in one instruction, and
// AVX512_BF16's vdpbf16ps does 32 bf16 pairs into 16 float32 sums: two such
// instructions per 64-byte load leave the product bound by memory alone.
//
// Packed layout: the N outputs in blocks of 16, each block K/4 (int8) or
// K/2 (bf16) groups of 64 bytes: for group g, output j of the block holds
// its weights for inputs 4g..4g+3 (int8) or 2g..2g+1 (bf16) in bytes
// 4j..4j+3. A load is then 16 outputs' sums' worth of inputs, no horizontal
// reduction is needed, and each block streams front to back.
//
// Activations keep about 16 bits. int8: each row is scaled to integers xi
// in [-32767, 32767] (one float32 scale per row) and split into a high
// signed byte h = xi >> 8, stored offset as h + 128 because vpdpbusd wants
// unsigned bytes, and a low unsigned byte l = xi & 255: xi = 256·h + l. The
// offset is taken back with the column sums of the weights. bf16: x = xh + xl
// with xh = bf16(x) and xl = bf16(x - xh).

#define PKT_Q __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define PKT_H __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define PK_MAXR 8

static int pk_has_vnni(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
static int pk_has_bf16(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

// q8 blocks nb .. nb+BB-1 for R rows. xq: per row 2·K4·4 bytes, the high
// bytes then the low bytes. y[r, n] = sx[r]·sw[n]·(256·Σh·w + Σl·w) + b[n].
static inline __attribute__((always_inline)) PKT_Q void q8_blocks(const int R, const int BB,
		const uint8_t *xq, long K4, const int8_t *w, const int32_t *colsum, const float *sw,
		const float *sx, const float *b, float *y, long N, long nb) {
	__m512i hi[PK_MAXR][4], lo[PK_MAXR][4];
	for (int r = 0; r < R; r++)
		for (int j = 0; j < BB; j++) hi[r][j] = lo[r][j] = _mm512_setzero_si512();
	const long bstride = K4 * 64;
	const int8_t *wb = w + nb * bstride;
	for (long g = 0; g < K4; g++) {
		__m512i wv[4];
		for (int j = 0; j < BB; j++) wv[j] = _mm512_loadu_si512((const void *)(wb + j * bstride + g * 64));
		for (int r = 0; r < R; r++) {
			const uint8_t *xr = xq + (long)r * 2 * K4 * 4;
			int32_t h4, l4;
			memcpy(&h4, xr + g * 4, 4);
			memcpy(&l4, xr + K4 * 4 + g * 4, 4);
			__m512i xh = _mm512_set1_epi32(h4), xl = _mm512_set1_epi32(l4);
			for (int j = 0; j < BB; j++) {
				hi[r][j] = _mm512_dpbusd_epi32(hi[r][j], xh, wv[j]);
				lo[r][j] = _mm512_dpbusd_epi32(lo[r][j], xl, wv[j]);
			}
		}
	}
	for (int j = 0; j < BB; j++) {
		long n = (nb + j) * 16;
		if (n >= N) break;
		__mmask16 m = N - n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n)) - 1);
		__m512i cs = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(colsum + n)), 7);
		__m512 s = _mm512_loadu_ps(sw + n);
		__m512 bv = b ? _mm512_maskz_loadu_ps(m, b + n) : _mm512_setzero_ps();
		for (int r = 0; r < R; r++) {
			__m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi[r][j], cs)), _mm512_set1_ps(256.0f),
				_mm512_cvtepi32_ps(lo[r][j]));
			v = _mm512_fmadd_ps(_mm512_mul_ps(v, _mm512_set1_ps(sx[r])), s, bv);
			_mm512_mask_storeu_ps(y + (long)r * N + n, m, v);
		}
	}
}

// h16: the same for bf16 weights; xh: per row 2·K2·2 uint16, the high parts
// then the low parts.
static inline __attribute__((always_inline)) PKT_H void h16_blocks(const int R, const int BB,
		const uint16_t *xh, long K2, const uint16_t *w, const float *b, float *y, long N, long nb) {
	__m512 hi[PK_MAXR][4], lo[PK_MAXR][4];
	for (int r = 0; r < R; r++)
		for (int j = 0; j < BB; j++) hi[r][j] = lo[r][j] = _mm512_setzero_ps();
	const long bstride = K2 * 32;
	const uint16_t *wb = w + nb * bstride;
	for (long g = 0; g < K2; g++) {
		__m512bh wv[4];
		for (int j = 0; j < BB; j++) wv[j] = (__m512bh)_mm512_loadu_si512((const void *)(wb + j * bstride + g * 32));
		for (int r = 0; r < R; r++) {
			const uint16_t *xr = xh + (long)r * 2 * K2 * 2;
			int32_t h2, l2;
			memcpy(&h2, xr + g * 2, 4);
			memcpy(&l2, xr + K2 * 2 + g * 2, 4);
			__m512bh vh = (__m512bh)_mm512_set1_epi32(h2), vl = (__m512bh)_mm512_set1_epi32(l2);
			for (int j = 0; j < BB; j++) {
				hi[r][j] = _mm512_dpbf16_ps(hi[r][j], vh, wv[j]);
				lo[r][j] = _mm512_dpbf16_ps(lo[r][j], vl, wv[j]);
			}
		}
	}
	for (int j = 0; j < BB; j++) {
		long n = (nb + j) * 16;
		if (n >= N) break;
		__mmask16 m = N - n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n)) - 1);
		__m512 bv = b ? _mm512_maskz_loadu_ps(m, b + n) : _mm512_setzero_ps();
		for (int r = 0; r < R; r++)
			_mm512_mask_storeu_ps(y + (long)r * N + n, m, _mm512_add_ps(_mm512_add_ps(hi[r][j], lo[r][j]), bv));
	}
}

// One row keeps four blocks (eight sum chains) in flight; more rows share
// each weight load between them and take fewer blocks to stay in registers.
#define PK_CASES(F, ...) \
	switch (rows) { \
	case 1: F(1, 4, __VA_ARGS__); break; case 2: F(2, 2, __VA_ARGS__); break; \
	case 3: F(3, 2, __VA_ARGS__); break; case 4: F(4, 1, __VA_ARGS__); break; \
	case 5: F(5, 1, __VA_ARGS__); break; case 6: F(6, 1, __VA_ARGS__); break; \
	case 7: F(7, 1, __VA_ARGS__); break; default: F(8, 1, __VA_ARGS__); break; }
#define PK_STEP(F, RR, BB, ...) { \
		long nb = nb0; \
		for (; nb + BB <= nb1; nb += BB) F(RR, BB, __VA_ARGS__, nb); \
		for (; nb < nb1; nb++) F(RR, 1, __VA_ARGS__, nb); }
#define Q8_STEP(RR, BB, ...) PK_STEP(q8_blocks, RR, BB, __VA_ARGS__)
#define H16_STEP(RR, BB, ...) PK_STEP(h16_blocks, RR, BB, __VA_ARGS__)

// Blocks nb0..nb1 of all R rows, eight rows per pass over the weights.
PKT_Q static void pk_q8(int R, const uint8_t *xq, long K4, const int8_t *w, const int32_t *colsum, const float *sw,
		const float *sx, const float *b, float *y, long N, long nb0, long nb1) {
	for (int r0 = 0; r0 < R; r0 += PK_MAXR) {
		int rows = R - r0 < PK_MAXR ? R - r0 : PK_MAXR;
		const uint8_t *x = xq + (long)r0 * 2 * K4 * 4;
		float *yr = y + (long)r0 * N;
		const float *s = sx + r0;
		PK_CASES(Q8_STEP, x, K4, w, colsum, sw, s, b, yr, N)
	}
}
PKT_H static void pk_h16(int R, const uint16_t *xh, long K2, const uint16_t *w, const float *b, float *y, long N,
		long nb0, long nb1) {
	for (int r0 = 0; r0 < R; r0 += PK_MAXR) {
		int rows = R - r0 < PK_MAXR ? R - r0 : PK_MAXR;
		const uint16_t *x = xh + (long)r0 * 2 * K2 * 2;
		float *yr = y + (long)r0 * N;
		PK_CASES(H16_STEP, x, K2, w, b, yr, N)
	}
}


// A product of a decoding step lasts 20–900 µs. Handing half of it to a
// goroutine costs a futex wake-up of another OS thread each time, and a
// GPT-2 step makes 49 products: measured, that was over 2 ms a token. The
// pool's threads instead spin for a millisecond after each job (a step's
// products follow each other within microseconds) before they sleep, as
// OpenMP's active wait does. A job is cut into a few chunks per thread that
// the caller and the workers take in turn, so a worker the OS has not
// scheduled yet (a busy machine) costs at most the chunk it holds; the
// caller takes whatever is left. One job at a time: a caller that finds the
// pool busy computes its product alone.
typedef struct {
	int kind; // 0 int8, 1 bf16
	int R;
	const void *x;
	long K4or2;
	const void *w;
	const int32_t *colsum;
	const float *sw, *sx, *b;
	float *y;
	long N;
} pk_job;

static void pk_run_job(const pk_job *j, long b0, long b1) {
	if (b0 >= b1) return;
	if (j->kind == 0) pk_q8(j->R, j->x, j->K4or2, j->w, j->colsum, j->sw, j->sx, j->b, j->y, j->N, b0, b1);
	else pk_h16(j->R, j->x, j->K4or2, j->w, j->b, j->y, j->N, b0, b1);
}

// The job being run, tagged by generation: ctl holds the generation in its
// high 32 bits and the next chunk to take in its low 32. A thread copies the
// job, then takes chunks by compare-and-swap on ctl with the generation it
// copied under: a copy made while the caller was moving to the next job
// fails that swap and is discarded.
static struct {
	pthread_mutex_t busy, mu;
	pthread_cond_t cv;
	int workers; // threads besides the caller
	atomic_ulong ctl;
	atomic_long done; // chunks finished in this generation
	atomic_int sleeping;
	pk_job job;
	long nb, chunk, chunks;
} pk_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static inline void pk_relax(int spins) {
	if (spins < 4096) _mm_pause();
	else sched_yield();
}

static long pk_now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

// pk_take runs chunks of generation g until none are left or the
// generation has moved on.
static void pk_take(unsigned long g, const pk_job *j, long nb, long chunk, long chunks) {
	for (;;) {
		unsigned long c = atomic_load(&pk_pool.ctl);
		if ((c >> 32) != g || (long)(c & 0xffffffffUL) >= chunks) return;
		if (!atomic_compare_exchange_weak(&pk_pool.ctl, &c, c + 1)) continue;
		long i = (long)(c & 0xffffffffUL), b0 = i * chunk, b1 = b0 + chunk;
		pk_run_job(j, b0, b1 < nb ? b1 : nb);
		atomic_fetch_add(&pk_pool.done, 1);
	}
}

static void *pk_worker(void *arg) {
	(void)arg;
	unsigned long seen = 0;
	for (;;) {
		unsigned long g;
		long start = pk_now_ns();
		for (int spins = 0; (g = atomic_load(&pk_pool.ctl) >> 32) == seen; spins++) {
			pk_relax(spins);
			if ((spins & 255) == 255 && pk_now_ns() - start > 1000000) {
				pthread_mutex_lock(&pk_pool.mu);
				atomic_fetch_add(&pk_pool.sleeping, 1);
				while ((atomic_load(&pk_pool.ctl) >> 32) == seen) pthread_cond_wait(&pk_pool.cv, &pk_pool.mu);
				atomic_fetch_sub(&pk_pool.sleeping, 1);
				pthread_mutex_unlock(&pk_pool.mu);
				start = pk_now_ns();
			}
		}
		pk_job j = pk_pool.job;
		long nb = pk_pool.nb, chunk = pk_pool.chunk, chunks = pk_pool.chunks;
		pk_take(g, &j, nb, chunk, chunks);
		seen = g;
	}
	return NULL;
}

// pk_start makes threads-1 workers (once; later calls return the count).
static int pk_start(int threads) {
	pthread_mutex_lock(&pk_pool.busy);
	if (pk_pool.workers == 0) {
		if (threads > 16) threads = 16;
		for (long i = 0; i < threads - 1; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, pk_worker, NULL) != 0) break;
			pthread_detach(t);
			pk_pool.workers++;
		}
	}
	int w = pk_pool.workers;
	pthread_mutex_unlock(&pk_pool.busy);
	return w;
}

// pk_parallel runs the job's blocks 0..nb in chunks of a multiple of align
// blocks, four chunks per thread, on the caller and the workers.
static void pk_parallel(const pk_job *j, long nb, long align, int serial) {
	int w = pk_pool.workers;
	if (serial || w == 0 || pthread_mutex_trylock(&pk_pool.busy) != 0) {
		pk_run_job(j, 0, nb);
		return;
	}
	long chunk = (nb + 4 * (w + 1) - 1) / (4 * (w + 1));
	chunk = (chunk + align - 1) / align * align;
	long chunks = (nb + chunk - 1) / chunk;
	pk_pool.job = *j;
	pk_pool.nb = nb;
	pk_pool.chunk = chunk;
	pk_pool.chunks = chunks;
	atomic_store(&pk_pool.done, 0);
	unsigned long g = (atomic_load(&pk_pool.ctl) >> 32) + 1;
	atomic_store(&pk_pool.ctl, g << 32);
	if (atomic_load(&pk_pool.sleeping) > 0) {
		pthread_mutex_lock(&pk_pool.mu);
		pthread_cond_broadcast(&pk_pool.cv);
		pthread_mutex_unlock(&pk_pool.mu);
	}
	pk_take(g, j, nb, chunk, chunks);
	for (int spins = 0; atomic_load(&pk_pool.done) < chunks; spins++) pk_relax(spins);
	pthread_mutex_unlock(&pk_pool.busy);
}

// The two products' entries: the job lives on the C stack for the call.
static void pk_q8_par(int R, const uint8_t *xq, long K4, const int8_t *w, const int32_t *colsum, const float *sw,
		const float *sx, const float *b, float *y, long N, long nb, int serial) {
	pk_job j = {0, R, xq, K4, w, colsum, sw, sx, b, y, N};
	pk_parallel(&j, nb, 4, serial);
}
static void pk_h16_par(int R, const uint16_t *xh, long K2, const uint16_t *w, const float *b, float *y, long N,
		long nb, int serial) {
	pk_job j = {1, R, xh, K2, w, NULL, NULL, NULL, b, y, N};
	pk_parallel(&j, nb, 4, serial);
}

// Activations: row r of x [R, K] into the split forms above (K padded with
// zeros to K4·4 or K2·2).
static void pk_quant_q8(int R, const float *x, long K, long K4, uint8_t *xq, float *sx) {
	for (int r = 0; r < R; r++) {
		const float *xr = x + (long)r * K;
		float m = 0;
		for (long k = 0; k < K; k++) {
			float a = xr[k] < 0 ? -xr[k] : xr[k];
			m = a > m ? a : m;
		}
		float s = m > 0 ? m / 32767.0f : 1.0f, inv = 1.0f / s;
		sx[r] = s;
		uint8_t *h = xq + (long)r * 2 * K4 * 4, *l = h + K4 * 4;
		for (long k = 0; k < K4 * 4; k++) {
			// 1.5·2²³ rounds to the nearest integer (|v| <= 32767).
			int32_t v = k < K ? (int32_t)((xr[k] * inv + 12582912.0f) - 12582912.0f) : 0;
			v = v > 32767 ? 32767 : v < -32767 ? -32767 : v;
			h[k] = (uint8_t)((v >> 8) + 128);
			l[k] = (uint8_t)(v & 255);
		}
	}
}
static inline uint16_t pk_bf16(float f) {
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)(u >> 16) | 0x40;
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static void pk_split_bf16(int R, const float *x, long K, long K2, uint16_t *xh) {
	for (int r = 0; r < R; r++) {
		const float *xr = x + (long)r * K;
		uint16_t *h = xh + (long)r * 2 * K2 * 2, *l = h + K2 * 2;
		for (long k = 0; k < K2 * 2; k++) {
			float v = k < K ? xr[k] : 0;
			uint16_t hv = pk_bf16(v);
			uint32_t hb = (uint32_t)hv << 16;
			float back;
			memcpy(&back, &hb, 4);
			h[k] = hv;
			l[k] = pk_bf16(v - back);
		}
	}
}
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

var (
	hasVNNI   = C.pk_has_vnni() != 0
	hasBF16Dp = C.pk_has_bf16() != 0
	poolOnce  sync.Once
)

// startPool starts the packed kernels' worker threads, one fewer than
// GOMAXPROCS (at most 8 in all), the first time a product needs them.
func startPool() {
	poolOnce.Do(func() { C.pk_start(C.int(min(runtime.GOMAXPROCS(0), 8))) })
}

// packable reports whether weights of precision p go into the packed
// dot-product layout at the current kernel level (3: this CPU has the
// instruction and no test capped the level below it).
func packable(p Precision) bool {
	if lowPForced() < 3 {
		return false
	}
	return (p == Int8 && hasVNNI) || (p == BF16 && hasBF16Dp)
}

// pack rewrites l's weights (stored [N, K]) into the packed layout and, for
// int8, records each output's weight sum and a padded copy of the scales.
func (l *LowP) pack() {
	K, N := l.K, l.N
	blocks := (N + 15) / 16
	if l.Prec == Int8 {
		k4 := (K + 3) / 4
		out := make([]int8, blocks*16*k4*4)
		l.colsum = make([]int32, blocks*16)
		l.padScale = make([]float32, blocks*16)
		copy(l.padScale, l.Scale)
		for n := int64(0); n < N; n++ {
			row := l.Q[n*K : (n+1)*K]
			base := (n/16)*k4*64 + (n%16)*4
			var s int32
			for k, v := range row {
				out[base+int64(k)/4*64+int64(k)%4] = v
				s += int32(v)
			}
			l.colsum[n] = s
		}
		l.Q, l.packed = out, true
		return
	}
	k2 := (K + 1) / 2
	out := make([]uint16, blocks*16*k2*2)
	for n := int64(0); n < N; n++ {
		row := l.H[n*K : (n+1)*K]
		base := (n/16)*k2*32 + (n%16)*2
		for k, v := range row {
			out[base+int64(k)/2*32+int64(k)%2] = v
		}
	}
	l.H, l.packed = out, true
}

// unpacked returns the weights in the [N, K] layout NewLowP documents.
func (l *LowP) unpacked() ([]int8, []uint16) {
	if !l.packed {
		return l.Q, l.H
	}
	K, N := l.K, l.N
	if l.Prec == Int8 {
		k4 := (K + 3) / 4
		q := make([]int8, K*N)
		for n := int64(0); n < N; n++ {
			base := (n/16)*k4*64 + (n%16)*4
			for k := int64(0); k < K; k++ {
				q[n*K+k] = l.Q[base+k/4*64+k%4]
			}
		}
		return q, nil
	}
	k2 := (K + 1) / 2
	h := make([]uint16, K*N)
	for n := int64(0); n < N; n++ {
		base := (n/16)*k2*32 + (n%16)*2
		for k := int64(0); k < K; k++ {
			h[n*K+k] = l.H[base+k/2*32+k%2]
		}
	}
	return nil, h
}

// mulPacked computes y [R, N] = x [R, K]·W + b with the packed kernels,
// the output blocks shared out between the cores by the pool (products too
// small to be worth it run on the caller's thread).
func (l *LowP) mulPacked(r int64, xp, bp, yp *C.float) {
	startPool()
	K, N := l.K, l.N
	blocks := (N + 15) / 16
	serial := C.int(0)
	if r*K*N < 1<<16 {
		serial = 1
	}
	if l.Prec == Int8 {
		k4 := (K + 3) / 4
		xq := make([]uint8, r*2*k4*4)
		sx := make([]float32, r)
		C.pk_quant_q8(C.int(r), xp, C.long(K), C.long(k4), (*C.uint8_t)(&xq[0]), (*C.float)(&sx[0]))
		C.pk_q8_par(C.int(r), (*C.uint8_t)(&xq[0]), C.long(k4), (*C.int8_t)(unsafe.Pointer(&l.Q[0])),
			(*C.int32_t)(&l.colsum[0]), (*C.float)(&l.padScale[0]), (*C.float)(&sx[0]), bp, yp, C.long(N),
			C.long(blocks), serial)
		return
	}
	k2 := (K + 1) / 2
	xh := make([]uint16, r*2*k2*2)
	C.pk_split_bf16(C.int(r), xp, C.long(K), C.long(k2), (*C.uint16_t)(&xh[0]))
	C.pk_h16_par(C.int(r), (*C.uint16_t)(&xh[0]), C.long(k2), (*C.uint16_t)(unsafe.Pointer(&l.H[0])), bp, yp,
		C.long(N), C.long(blocks), serial)
}
