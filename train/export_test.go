package train

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/model/checkpoint"
)

// A run's epoch checkpoints export under train.py's names: epoch-001 (after
// the first epoch) is {prefix}-000.pt, and the latest is {prefix}_latest.pt,
// each with the original's parameter names and our weights.
func TestExportOfficialRun(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.SampleCaptions = 0
	runTrainer(t, newTrainer(t, c))
	out := t.TempDir()
	files, err := ExportOfficialRun(c.RunDir(), out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"run-000.pt": "epoch-001", "run-001.pt": "epoch-002", "run_latest.pt": "epoch-002"}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for name, ckpt := range want {
		src, _, err := checkpoint.Load(filepath.Join(c.RunDir(), CheckpointsDir, ckpt), gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := checkpoint.StateDict(src)
		if err != nil {
			t.Fatal(err)
		}
		f, err := tensorfile.OpenTorch(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n, rt := range sd {
			got, err := f.Tensor(n)
			if err != nil || string(got.Data) != string(rt.Data) {
				t.Fatalf("%s: tensor %s differs from %s (%v)", name, n, ckpt, err)
			}
		}
		if _, err := f.Tensor("gpt.lm_head.weight"); err != nil {
			t.Errorf("%s: no tied gpt.lm_head.weight, which the original's load_state_dict expects", name)
		}
		f.Close()
	}
	if _, err := ExportOfficialRun(t.TempDir(), out); err == nil {
		t.Error("a directory without checkpoints exported")
	}
	if _, err := os.Stat(filepath.Join(out, "run-002.pt")); err == nil {
		t.Error("an epoch number was not shifted to train.py's 0-based count")
	}
}
