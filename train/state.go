package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
)

// Files of a run dir and of each checkpoint in it.
const (
	CheckpointsDir = "checkpoints"
	LatestFile     = "latest" // one line: the newest checkpoint's name
	StateFile      = "trainer_state.json"
	OptimizerFile  = "optimizer.safetensors"
	MetricsFile    = "metrics.jsonl"
)

// State is where a run stands. With the seed it determines everything that
// follows: epoch permutations come from (seed, epoch) and dropout from
// (seed, micro), so no RNG state needs saving beyond these counters.
type State struct {
	Step     int              `json:"step"`                 // optimizer steps done
	Epoch    int              `json:"epoch"`                // current epoch, 0-based
	Batch    int              `json:"batch"`                // micro-batches of this epoch consumed
	Micro    int64            `json:"micro"`                // micro-batches consumed in the whole run (per rank)
	World    int              `json:"world_size,omitempty"` // ranks that wrote it (0: 1)
	Elapsed  float64          `json:"elapsed_s"`            // training seconds so far
	Total    int              `json:"total_steps"`
	OptSteps map[string]int64 `json:"optimizer_steps"`
	Config   Config           `json:"config"`
	RNG      string           `json:"rng"`
	// fp16's loss scaler (precision.go), so a resume continues its scale.
	LossScale     float64 `json:"loss_scale,omitempty"`
	LossScaleGood int     `json:"loss_scale_good_steps,omitempty"`
}

const rngNote = "permutation: PCG(seed, epoch+1), global micro-batches dealt out rank-strided; dropout: torch.manual_seed(seed+1+micro*world_size+rank) per micro-batch"

// saveCheckpoint writes a checkpoint atomically: everything goes into a
// temporary directory (each file fsynced), which then takes the final name
// in one step (an existing checkpoint of that name is swapped out, never
// removed first); then the latest pointer moves to it and old step
// checkpoints are pruned. A failure at any point (a full disk) leaves the
// previous checkpoints and the latest pointer as they were. Weights holding
// NaN or Inf are refused before anything is written.
func (t *Trainer) saveCheckpoint(name string) (err error) {
	if !t.leader() {
		return nil
	}
	if bad, ferr := firstNonFinite(t.params, false); ferr != nil || bad != "" {
		if ferr != nil {
			return fmt.Errorf("checkpoint %s: %w", name, ferr)
		}
		return fmt.Errorf("%w: parameter %s holds NaN/Inf at step %d; checkpoint %s not saved", ErrNonFinite, bad, t.st.Step, name)
	}
	root := filepath.Join(t.RunDir, CheckpointsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	final := filepath.Join(root, name)
	tmp := filepath.Join(root, tmpPrefix+name)
	os.RemoveAll(tmp)
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	st := t.st
	moments, steps, err := t.Opt.state()
	if err != nil {
		return err
	}
	st.OptSteps, st.Config, st.RNG = steps, t.Cfg, rngNote
	if t.world() > 1 {
		st.World = t.world()
	}
	if t.scaler != nil {
		st.LossScale, st.LossScaleGood = t.scaler.scale, t.scaler.good
	}
	// Marshal first: a value JSON cannot hold must fail the save, not
	// leave an empty trainer_state.json behind.
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint %s: trainer state: %w", name, err)
	}
	dc := checkpoint.NewDirConfig(t.Model, t.Train.Store.Manifest.CLIPModel)
	if err := checkpoint.Save(tmp, t.Model, dc, t.tokDir); err != nil {
		return fmt.Errorf("checkpoint %s: %w", tmp, err)
	}
	if err := saveFault("model"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", tmp, err)
	}
	if err := tensorfile.WriteSafetensors(filepath.Join(tmp, OptimizerFile), moments, map[string]string{"format": "clipcap-adamw-1"}); err != nil {
		return fmt.Errorf("checkpoint %s: %w", tmp, err)
	}
	if err := saveFault("optimizer"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", tmp, err)
	}
	if err := writeFile(filepath.Join(tmp, StateFile), append(data, '\n')); err != nil {
		return err
	}
	if err := saveFault("state"); err != nil {
		return fmt.Errorf("checkpoint %s: %w", tmp, err)
	}
	if err := replaceDir(tmp, final); err != nil {
		return fmt.Errorf("checkpoint %s: %w", final, err)
	}
	syncDir(root)
	if err := saveFault("latest"); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(t.RunDir, LatestFile), []byte(name+"\n")); err != nil {
		return err
	}
	return t.prune(root, name)
}

// saveFault, when set (tests), fails a save after the named stage, as a
// full disk or a crash there would.
var saveFault = func(stage string) error { return nil }

// tmpPrefix marks checkpoint directories still being written (or swapped
// out); the name after it is the checkpoint's.
const tmpPrefix = ".tmp-"

// replaceDir moves the complete directory tmp to final. When final exists
// the two are exchanged in one rename (so final never goes missing) and the
// old one, now at tmp, is removed; filesystems without RENAME_EXCHANGE get
// two renames, which leave final missing only between them.
func replaceDir(tmp, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return os.RemoveAll(tmp)
	case errors.Is(err, unix.ENOENT):
		return os.Rename(tmp, final) // nothing to replace
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP):
		old := tmp + ".old"
		if err := os.Rename(final, old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			os.Rename(old, final)
			return err
		}
		return os.RemoveAll(old)
	default:
		return err
	}
}

// cleanTemps removes the half-written checkpoints of a run that died while
// saving; they are never a resume point.
func cleanTemps(runDir string) {
	root := filepath.Join(runDir, CheckpointsDir)
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// prune keeps the newest keep_last step checkpoints; epoch checkpoints are
// the run's results and stay. Only step checkpoints older than the one just
// saved are candidates, and the one the latest pointer names on disk is
// never removed: a step directory left from an abandoned later timeline (a
// crash before the pointer moved) must not push out the resume point.
func (t *Trainer) prune(root, latest string) error {
	if t.Cfg.KeepLast <= 0 {
		return nil
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	keep := map[string]bool{latest: true}
	if dir, err := LatestCheckpoint(t.RunDir); err == nil {
		keep[filepath.Base(dir)] = true
	}
	var steps []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "step-") && !keep[n] && (!strings.HasPrefix(latest, "step-") || n < latest) {
			steps = append(steps, n)
		}
	}
	sort.Strings(steps) // zero-padded step numbers sort in order
	for len(steps) > t.Cfg.KeepLast-1 {
		if err := os.RemoveAll(filepath.Join(root, steps[0])); err != nil {
			return err
		}
		steps = steps[1:]
	}
	return nil
}

// LatestCheckpoint returns the directory the run's latest pointer names.
func LatestCheckpoint(runDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(runDir, LatestFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s has no checkpoint to resume from (no %s file)", runDir, LatestFile)
		}
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%s: bad checkpoint name %q", filepath.Join(runDir, LatestFile), name)
	}
	return filepath.Join(runDir, CheckpointsDir, name), nil
}

// readState reads a checkpoint's trainer_state.json.
func readState(dir string) (State, error) {
	var st State
	path := filepath.Join(dir, StateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

func writeFile(path string, data []byte) error {
	return tensorfile.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some filesystems refuse directory fsync
		d.Close()
	}
}
