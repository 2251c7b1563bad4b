package nn

/*
#cgo CFLAGS: -O3 -Wno-psabi
#include <math.h>
#include <stdint.h>
#include <string.h>

// The small operations of one decoding step, on plain float32 rows. Between
// its weight products a GPT-2 step does about twenty tensor operations a
// layer on vectors of 768 to 3072 floats (layer norms, the attention over
// the cache, GELU, residual adds); through libtorch each costs more in
// dispatch than in arithmetic (about 4 ms a token for GPT-2 small). Here
// they are a few loops.

// y[r] = (x[r] - mean) / sqrt(var + eps) * g + b, for rows of width d;
// two-pass mean and variance in double, as precise as libtorch's.
static void ro_layer_norm(int R, const float *x, long d, const float *g, const float *b, float eps, float *y) {
	for (int r = 0; r < R; r++) {
		const float *xr = x + (long)r * d;
		float *yr = y + (long)r * d;
		double s = 0;
		for (long i = 0; i < d; i++) s += xr[i];
		float mean = (float)(s / d);
		double v = 0;
		for (long i = 0; i < d; i++) {
			float c = xr[i] - mean;
			v += (double)c * c;
		}
		float inv = (float)(1.0 / sqrt(v / d + eps));
		for (long i = 0; i < d; i++) yr[i] = (xr[i] - mean) * inv * g[i] + b[i];
	}
}

// GELU's tanh form as x·sigmoid(2z), z = √(2/π)(x + 0.044715x³), which is
// 0.5x(1 + tanh z) exactly; expf overflows to inf for very negative z and
// gives the right limit 0.
static void ro_gelu_tanh(long n, float *x) {
	for (long i = 0; i < n; i++) {
		float v = x[i];
		float z = 1.5957691216057308f * (v + 0.044715f * v * v * v);
		x[i] = v / (1.0f + expf(-z));
	}
}

// x[i] += a[i]
static void ro_add(long n, float *x, const float *a) {
	for (long i = 0; i < n; i++) x[i] += a[i];
}

// Attention of one new position per row over a cache [R, H, maxLen, hd]:
// qkv [R, 3·H·hd] holds the new query, key and value (GPT-2's c_attn
// output); the key and value are written at position pos, then
// ctx[r, h·hd:(h+1)·hd] = softmax(q·Kᵀ/√hd)·V over positions 0..pos.
// scores is scratch of pos+1 floats.
static void ro_attend(int R, int H, long hd, const float *qkv, float *kc, float *vc, long maxLen, long pos,
		float *ctx, float *scores) {
	long E = H * hd;
	float scale = 1.0f / sqrtf((float)hd);
	for (int r = 0; r < R; r++) {
		const float *q = qkv + (long)r * 3 * E, *k = q + E, *v = k + E;
		for (int h = 0; h < H; h++) {
			float *kh = kc + ((long)r * H + h) * maxLen * hd, *vh = vc + ((long)r * H + h) * maxLen * hd;
			memcpy(kh + pos * hd, k + h * hd, hd * sizeof(float));
			memcpy(vh + pos * hd, v + h * hd, hd * sizeof(float));
			const float *qh = q + h * hd;
			float m = -INFINITY;
			for (long t = 0; t <= pos; t++) {
				float s = 0;
				const float *kt = kh + t * hd;
				for (long i = 0; i < hd; i++) s += qh[i] * kt[i];
				s *= scale;
				scores[t] = s;
				m = s > m ? s : m;
			}
			float sum = 0;
			for (long t = 0; t <= pos; t++) {
				scores[t] = expf(scores[t] - m);
				sum += scores[t];
			}
			float *out = ctx + (long)r * E + h * hd;
			memset(out, 0, hd * sizeof(float));
			for (long t = 0; t <= pos; t++) {
				float p = scores[t] / sum;
				const float *vt = vh + t * hd;
				for (long i = 0; i < hd; i++) out[i] += p * vt[i];
			}
		}
	}
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Rows are float32 row-major matrices in Go or tensor memory. The functions
// below check the lengths they are given against the shapes they are told,
// so a wrong call fails with an error instead of reading past a buffer.

func rowsPtr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

// LayerNormRows writes layer norm of each width-d row of x into y.
func LayerNormRows(x, y []float32, d int, g, b []float32, eps float64) error {
	if d == 0 || len(x)%d != 0 || len(y) != len(x) || len(g) != d || len(b) != d {
		return fmt.Errorf("layer norm rows: x %d, y %d, g %d, b %d floats for width %d", len(x), len(y), len(g), len(b), d)
	}
	C.ro_layer_norm(C.int(len(x)/d), rowsPtr(x), C.long(d), rowsPtr(g), rowsPtr(b), C.float(eps), rowsPtr(y))
	return nil
}

// GeluTanhRows applies GPT-2's gelu_new in place.
func GeluTanhRows(x []float32) {
	if len(x) > 0 {
		C.ro_gelu_tanh(C.long(len(x)), rowsPtr(x))
	}
}

// AddRows adds a into x element by element.
func AddRows(x, a []float32) error {
	if len(x) != len(a) {
		return fmt.Errorf("add rows: %d and %d floats", len(x), len(a))
	}
	if len(x) > 0 {
		C.ro_add(C.long(len(x)), rowsPtr(x), rowsPtr(a))
	}
	return nil
}

// AttendCached is one decoding step's attention for each of the rows of
// qkv ([rows, 3·heads·hd], the fused query/key/value projection): it stores
// the new key and value at position pos of the caches kc, vc ([rows, heads,
// maxLen, hd]) and writes the attention over positions 0..pos into ctx
// ([rows, heads·hd]).
func AttendCached(qkv, kc, vc, ctx []float32, heads, hd, maxLen, pos int) error {
	e := heads * hd
	if e == 0 || len(qkv)%(3*e) != 0 {
		return fmt.Errorf("attend: qkv has %d floats, not rows of 3×%d", len(qkv), e)
	}
	rows := len(qkv) / (3 * e)
	if pos < 0 || pos >= maxLen || len(kc) != rows*e*maxLen || len(vc) != len(kc) || len(ctx) != rows*e {
		return fmt.Errorf("attend: position %d, caches %d/%d floats, ctx %d, for %d rows × %d × %d positions",
			pos, len(kc), len(vc), len(ctx), rows, e, maxLen)
	}
	scores := make([]float32, pos+1)
	C.ro_attend(C.int(rows), C.int(heads), C.long(hd), rowsPtr(qkv), rowsPtr(kc), rowsPtr(vc), C.long(maxLen),
		C.long(pos), rowsPtr(ctx), rowsPtr(scores))
	return nil
}

// MulRows computes y [rows, N] = x [rows, K]·W + b (b [N] or nil) with
// the held weights, the rows' form of Forward for callers that keep their
// activations in plain memory.
func (l *LowP) MulRows(x, y, b []float32) error {
	if len(x)%int(l.K) != 0 || len(y) != len(x)/int(l.K)*int(l.N) || (b != nil && len(b) != int(l.N)) || len(x) == 0 {
		return fmt.Errorf("low precision product: x %d, y %d, b %d floats for a %d×%d weight", len(x), len(y), len(b), l.K, l.N)
	}
	var bp *C.float
	if b != nil {
		bp = rowsPtr(b)
	}
	l.mul(int64(len(x))/l.K, rowsPtr(x), bp, rowsPtr(y))
	return nil
}
