package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ResumeOrNew resumes cfg's run directory from its latest checkpoint, or
// starts the run there when it has none yet: what a restartable job
// (Kubernetes restartPolicy, Slurm --requeue) runs on every start. sets are
// the key=value overrides already applied to cfg, applied again to the
// saved config on resume. In a data-parallel job every rank decides alike:
// the latest pointer is only written by a checkpoint, after all have joined.
func ResumeOrNew(cfg Config, sets []string, log io.Writer, opts ...Option) (*Trainer, error) {
	dir := cfg.RunDir()
	if _, err := os.Stat(filepath.Join(dir, LatestFile)); err == nil {
		return Resume(dir, sets, log, opts...)
	}
	fmt.Fprintf(log, "no checkpoint in %s yet: starting the run\n", dir)
	return New(cfg, log, opts...)
}
