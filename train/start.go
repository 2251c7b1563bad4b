package train

import (
	"context"
	"fmt"
	"io"
)

// Job is one `clipcap train`: a config file with --set overrides, or a run
// to resume.
type Job struct {
	Config string   // YAML config (presets in configs/)
	Sets   []string // key=value overrides
	Resume bool     // continue from the latest checkpoint
	// RunDir is the run to resume; "" with Resume means the config's
	// out_dir/prefix, started afresh when it has no checkpoint yet (so a
	// restartable job can always pass --resume).
	RunDir string
}

// Start builds the trainer a Job describes, runs it to the end (or until
// ctx is cancelled, after saving a checkpoint) and returns the final model
// directory. Progress and the run's summary go to log.
func Start(ctx context.Context, j Job, log io.Writer, opts ...Option) (string, error) {
	var t *Trainer
	var err error
	switch {
	case j.Resume && j.RunDir != "":
		t, err = Resume(j.RunDir, j.Sets, log, opts...)
	case j.Config == "" && j.Resume:
		return "", fmt.Errorf("--resume needs a RUN_DIR or --config")
	case j.Config == "":
		return "", fmt.Errorf("--config is required (presets in configs/)")
	default:
		cfg, cerr := LoadConfig(j.Config, j.Sets)
		if cerr != nil {
			return "", cerr
		}
		if j.Resume {
			t, err = ResumeOrNew(cfg, j.Sets, log, opts...)
		} else {
			t, err = New(cfg, log, opts...)
		}
	}
	if err != nil {
		return "", err
	}
	defer t.Close()
	trainable := t.Model.Store.NumParams("")
	if t.Model.Cfg.FreezeGPT2 {
		trainable -= t.Model.Store.NumParams("gpt")
	}
	fmt.Fprintf(log, "run dir %s: %d train captions (max %d tokens), %d trainable parameters\n",
		t.RunDir, t.Train.Len(), t.Train.MaxLen, trainable)
	if err := t.Run(ctx); err != nil {
		return "", err
	}
	return LatestCheckpoint(t.RunDir)
}
