package serve

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// metrics are exported in the Prometheus text format, written by hand: a
// few counters and histograms do not justify client_golang's dependencies.
type metrics struct {
	mu         sync.Mutex
	byCode     map[int]uint64
	latency    *histogram
	batchSize  *histogram
	queueDepth atomic.Int64
	inflight   atomic.Int64
	streamCap  atomic.Uint64
	streamDrop atomic.Uint64
	// batchFailures counts batches ended by a recovered panic.
	batchFailures atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{
		byCode:    map[int]uint64{},
		latency:   newHistogram([]float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
		batchSize: newHistogram([]float64{1, 2, 4, 8, 16, 32, 64}),
	}
}

func (m *metrics) request(code int, seconds float64) {
	m.mu.Lock()
	m.byCode[code]++
	m.mu.Unlock()
	m.latency.observe(seconds)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	codes := make([]int, 0, len(m.byCode))
	for c := range m.byCode {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	fmt.Fprintf(w, "# HELP clipcap_requests_total Caption requests by HTTP status code.\n# TYPE clipcap_requests_total counter\n")
	for _, c := range codes {
		fmt.Fprintf(w, "clipcap_requests_total{code=\"%d\"} %d\n", c, m.byCode[c])
	}
	m.mu.Unlock()
	m.latency.write(w, "clipcap_request_duration_seconds", "Caption request latency, receipt to response.")
	m.batchSize.write(w, "clipcap_batch_size", "Images per CLIP forward pass.")
	fmt.Fprintf(w, "# HELP clipcap_queue_depth Images waiting for a batch.\n# TYPE clipcap_queue_depth gauge\nclipcap_queue_depth %d\n", m.queueDepth.Load())
	fmt.Fprintf(w, "# HELP clipcap_inflight_requests Caption requests being handled.\n# TYPE clipcap_inflight_requests gauge\nclipcap_inflight_requests %d\n", m.inflight.Load())
	fmt.Fprintf(w, "# HELP clipcap_stream_frames_total Streamed frames, captioned or dropped for a newer one.\n# TYPE clipcap_stream_frames_total counter\n")
	fmt.Fprintf(w, "clipcap_stream_frames_total{result=\"captioned\"} %d\nclipcap_stream_frames_total{result=\"dropped\"} %d\n", m.streamCap.Load(), m.streamDrop.Load())
	fmt.Fprintf(w, "# HELP clipcap_batch_failures_total Batches failed by a libtorch error or a bug; the server carried on.\n# TYPE clipcap_batch_failures_total counter\nclipcap_batch_failures_total %d\n", m.batchFailures.Load())
}

// histogram is a Prometheus histogram with fixed upper bounds.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v: le semantics
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, fmtFloat(b), cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, h.n, name, fmtFloat(h.sum), name, h.n)
}

func fmtFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
