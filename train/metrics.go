package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// Record is one line of metrics.jsonl. Type is "train" (every log_every
// steps), "val", "epoch" or "samples".
type Record struct {
	Type          string   `json:"type"`
	Step          int      `json:"step"`
	Epoch         int      `json:"epoch"`
	Loss          *float64 `json:"loss,omitempty"`
	ValLoss       *float64 `json:"val_loss,omitempty"`
	LR            *float64 `json:"lr,omitempty"`
	SamplesPerSec *float64 `json:"samples_per_s,omitempty"`
	Time          float64  `json:"time"` // training seconds since the run began
	Samples       []Sample `json:"samples,omitempty"`
}

// Sample is a generated caption next to its reference.
type Sample struct {
	ImageID   string `json:"image_id"`
	Caption   string `json:"caption"`
	Reference string `json:"reference"`
}

func f64(x float64) *float64 { return &x }

type metricsWriter struct {
	f *os.File
}

// openMetrics opens metrics.jsonl for appending. On resume, records after
// the checkpoint's step (written by the interrupted run past its last
// checkpoint) are dropped first, so the file reads as one uninterrupted run.
func openMetrics(runDir string, keepUpTo int, resume bool) (*metricsWriter, error) {
	path := filepath.Join(runDir, MetricsFile)
	if resume {
		recs, err := ReadMetrics(path)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		var buf bytes.Buffer
		for _, r := range recs {
			if r.Step <= keepUpTo {
				b, _ := json.Marshal(r)
				buf.Write(append(b, '\n'))
			}
		}
		if err := writeFile(path, buf.Bytes()); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsWriter{f: f}, nil
}

// write appends r; on ranks other than 0 there is no writer and it does
// nothing.
func (m *metricsWriter) write(r Record) error {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = m.f.Write(append(b, '\n'))
	return err
}

func (m *metricsWriter) close() error { return m.f.Close() }

// ReadMetrics parses a metrics.jsonl file; a torn last line (the process
// was killed mid-write) is ignored.
func ReadMetrics(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Type != "" {
			out = append(out, r)
		}
	}
	return out, sc.Err()
}
