package train

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/model/checkpoint"
)

// IsRunDir reports whether dir looks like a training run (out_dir/prefix
// with a checkpoints directory).
func IsRunDir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, CheckpointsDir))
	return err == nil && st.IsDir()
}

// ExportOfficialRun writes a run's checkpoints into outDir under the names
// the original train.py gives them, with the original's parameter names:
// our epoch-NNN (after NNN epochs, 1-based) becomes {prefix}-{NNN-1:03d}.pt
// (train.py counts epochs from 0), and the latest checkpoint also becomes
// {prefix}_latest.pt. prefix is the run's name (the run directory's base
// name, out_dir/prefix). epoch-000, the untrained model of an epochs: 0
// run, has no counterpart and is skipped. It returns the files written.
func ExportOfficialRun(runDir, outDir string) ([]string, error) {
	if !IsRunDir(runDir) {
		return nil, fmt.Errorf("%s is not a training run (no %s/)", runDir, CheckpointsDir)
	}
	prefix := filepath.Base(filepath.Clean(runDir))
	ents, err := os.ReadDir(filepath.Join(runDir, CheckpointsDir))
	if err != nil {
		return nil, err
	}
	type job struct{ src, dst string }
	var jobs []job
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "epoch-")
		epoch, err := strconv.Atoi(n)
		if !ok || err != nil || !e.IsDir() || epoch < 1 {
			continue
		}
		jobs = append(jobs, job{filepath.Join(runDir, CheckpointsDir, e.Name()), fmt.Sprintf("%s-%03d.pt", prefix, epoch-1)})
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].dst < jobs[b].dst })
	if latest, err := LatestCheckpoint(runDir); err == nil {
		jobs = append(jobs, job{latest, prefix + "_latest.pt"})
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%s has no epoch checkpoints to export", runDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, j := range jobs {
		m, _, err := checkpoint.Load(j.src, gotch.CPU)
		if err != nil {
			return written, err
		}
		out := filepath.Join(outDir, j.dst)
		if err := checkpoint.ExportOfficial(m, out); err != nil {
			return written, err
		}
		written = append(written, out)
	}
	return written, nil
}
