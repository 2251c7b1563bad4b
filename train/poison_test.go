package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/model/checkpoint"
)

// lr, weight_decay and grad_clip reject NaN and Inf, from YAML and --set.
func TestConfigRejectsNonFinite(t *testing.T) {
	for _, kv := range []string{"lr=inf", "lr=nan", "lr=-inf", "weight_decay=nan", "weight_decay=inf",
		"grad_clip=nan", "grad_clip=+Inf"} {
		key, _, _ := strings.Cut(kv, "=")
		_, err := LoadConfig("", []string{"data=s", kv})
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("%s: %v", kv, err)
		}
	}
	if _, err := LoadConfig(writeYAML(t, "data: s\nlr: .inf\n"), nil); err == nil || !strings.Contains(err.Error(), "lr:") {
		t.Errorf("lr: .inf in YAML: %v", err)
	}
}

// storeWithNaN writes a train store of 32 captions whose image `bad`
// has a NaN embedding.
func storeWithNaN(t *testing.T, bad int) string {
	dir := filepath.Join(t.TempDir(), "store")
	w, err := featstore.Create(dir, featstore.Meta{CLIPModel: "synthetic", EmbedDim: clipDim})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 32; i++ {
		emb := make([]float32, clipDim)
		for j := range emb {
			emb[j] = float32(math.Sin(float64(i*clipDim + j)))
		}
		if i == bad {
			emb[3] = float32(math.NaN())
		}
		if err := w.Add(emb, []featstore.Caption{{ImageID: fmt.Sprint(i), Caption: classCaptions[i%8], Split: "train"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A NaN loss stops the run before its optimizer step with a message naming
// the step; the checkpoints written before it hold finite weights.
func TestNonFiniteLossStopsTheRun(t *testing.T) {
	c := tinyConfig(storeWithNaN(t, 20), t.TempDir())
	c.BS, c.Epochs, c.CkptEvery, c.KeepLast, c.ValSplit, c.SampleCaptions = 4, 1, 1, 0, "", 0
	tr := newTrainer(t, c)
	err := tr.Run(context.Background())
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "loss") || !strings.Contains(err.Error(), "step-") {
		t.Fatalf("want a non-finite loss error naming the latest checkpoint, got %v", err)
	}
	t.Log(err)
	if tr.st.Step == 0 || tr.st.Step >= 8 {
		t.Fatalf("stopped after %d steps; the NaN image is in one of 8 batches", tr.st.Step)
	}
	assertFiniteCheckpoints(t, tr.RunDir)
}

// Weights that became NaN are never written into a checkpoint.
func TestPoisonedWeightsAreNotSaved(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.Epochs, c.CkptEvery, c.SampleCaptions = 1, 1, 0
	tr := newTrainer(t, c)
	tr.afterStep = func(step int) {
		if step == 2 {
			p := tr.params[0].Tensor
			noGrad(func() { p.MustFill_(ts.FloatScalar(math.NaN())) })
		}
	}
	err := tr.Run(context.Background())
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), tr.params[0].Name) {
		t.Fatalf("want a refusal naming %s, got %v", tr.params[0].Name, err)
	}
	if dir, err := LatestCheckpoint(tr.RunDir); err != nil || filepath.Base(dir) != "step-00000001" {
		t.Fatalf("latest checkpoint %s, %v; want step-00000001", dir, err)
	}
	assertFiniteCheckpoints(t, tr.RunDir)
}

func assertFiniteCheckpoints(t *testing.T, runDir string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(runDir, CheckpointsDir))
	for _, e := range ents {
		dir := filepath.Join(runDir, CheckpointsDir, e.Name())
		m, _, err := checkpoint.Load(dir, gotch.CPU)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, p := range m.Store.All() {
			if ok, err := allFinite(p.Tensor); err != nil || !ok {
				t.Fatalf("%s: %s is not finite (%v)", dir, p.Name, err)
			}
		}
	}
}

// A full disk at any stage of a save leaves the previous checkpoint, the
// latest pointer and no temporary behind; that includes replacing a
// checkpoint of the same name, which is never removed before its successor
// is complete. A state JSON cannot hold fails the save instead of writing
// an empty trainer_state.json.
func TestFailedSaveKeepsPreviousCheckpoint(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.SampleCaptions = 0
	tr := newTrainer(t, c)
	if err := tr.run(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if err := tr.saveCheckpoint("step-00000002"); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(tr.RunDir, CheckpointsDir)
	if err := tr.run(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	defer func() { saveFault = func(string) error { return nil } }()
	for _, stage := range []string{"model", "optimizer", "state", "latest"} {
		for _, name := range []string{"step-00000003", "step-00000002"} {
			saveFault = func(s string) error {
				if s == stage {
					return syscall.ENOSPC
				}
				return nil
			}
			err := tr.saveCheckpoint(name)
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%s at %s: %v", name, stage, err)
			}
			if dir, err := LatestCheckpoint(tr.RunDir); err != nil || filepath.Base(dir) != "step-00000002" {
				t.Fatalf("%s failing at %s moved latest to %s (%v)", name, stage, dir, err)
			}
			ents, _ := os.ReadDir(root)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Fatalf("%s failing at %s left %s", name, stage, e.Name())
				}
			}
			r, err := Resume(tr.RunDir, nil, testLog{t})
			if err != nil {
				t.Fatalf("%s failing at %s: resume: %v", name, stage, err)
			}
			r.Close()
		}
	}
	saveFault = func(string) error { return nil }
	tr.st.Elapsed = math.NaN()
	if err := tr.saveCheckpoint("step-00000004"); err == nil || !strings.Contains(err.Error(), "trainer state") {
		t.Fatalf("NaN in the state: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "step-00000004")); !os.IsNotExist(err) {
		t.Fatalf("a failed save left step-00000004: %v", err)
	}
}

// Half-written checkpoints of a crashed save are removed when a run starts.
func TestStartRemovesTempCheckpoints(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	junk := filepath.Join(c.RunDir(), CheckpointsDir, ".tmp-step-00000007")
	os.MkdirAll(junk, 0o755)
	os.WriteFile(filepath.Join(junk, "model.safetensors"), []byte("half"), 0o644)
	newTrainer(t, c)
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatalf("%s survived: %v", junk, err)
	}
}

// prune keeps the checkpoint a resume would start from, even when a step
// directory from an abandoned later timeline sorts after the new one.
func TestPruneKeepsResumePoint(t *testing.T) {
	run := t.TempDir()
	root := filepath.Join(run, CheckpointsDir)
	for _, n := range []string{"step-00000002", "step-00000004", "step-00000006", "epoch-001"} {
		os.MkdirAll(filepath.Join(root, n), 0o755)
	}
	// The run crashed after writing step 6 but before moving latest from 4;
	// resumed from 4, it has now saved step 5.
	os.MkdirAll(filepath.Join(root, "step-00000005"), 0o755)
	os.WriteFile(filepath.Join(run, LatestFile), []byte("step-00000005\n"), 0o644)
	tr := &Trainer{Cfg: Config{KeepLast: 2}, RunDir: run}
	if err := tr.prune(root, "step-00000005"); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]bool{"step-00000002": false, "step-00000004": true, "step-00000005": true, "epoch-001": true} {
		_, err := os.Stat(filepath.Join(root, n))
		if (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", n, err == nil, want)
		}
	}
}

// verify_data (--verify) hashes every shard; without it a shard whose size
// and mtime are as last verified is trusted.
func TestVerifyDataHashesShards(t *testing.T) {
	store := makeStore(t, 2)
	s, err := featstore.Open(store) // records the verified sizes and mtimes
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	shard := filepath.Join(store, "emb-00000.safetensors")
	st, _ := os.Stat(shard)
	data, _ := os.ReadFile(shard)
	data[len(data)-1] ^= 1
	os.WriteFile(shard, data, 0o644)
	os.Chtimes(shard, st.ModTime(), st.ModTime())
	c := tinyConfig(store, t.TempDir())
	newTrainer(t, c)
	c.VerifyData, c.Prefix = true, "verified"
	if _, err := New(c, testLog{t}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("verify_data over a flipped bit: %v", err)
	}
}
