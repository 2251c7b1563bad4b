package train

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A few hundred steps on the synthetic task: validation loss falls far
// below its start and greedy captions of training images are their captions.
func TestTrainLearnsSyntheticTask(t *testing.T) {
	c := tinyConfig(makeStore(t, 6), t.TempDir()) // 96 train captions
	c.Epochs, c.BS, c.ValEvery = 30, 8, 100       // 360 steps
	c.Dropout = "0"
	tr := newTrainer(t, c)
	before, after := trainedValLoss(t, tr)
	t.Logf("val loss %.4f -> %.4f", before, after)
	if !(after < before/10 && after < 0.2) {
		t.Errorf("val loss %.4f -> %.4f: want below a tenth of the start and 0.2", before, after)
	}
	rows := sampleRows(tr.Train, len(classCaptions))
	caps, err := tr.Captions(tr.Train, rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if want := tr.Train.Captions[r].Caption; caps[i] != want {
			t.Errorf("greedy caption of %s = %q, want %q", tr.Train.Captions[r].ImageID, caps[i], want)
		}
	}
	// Observability: metrics.jsonl has train, val, epoch and samples records.
	recs, err := ReadMetrics(filepath.Join(tr.RunDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[r.Type]++
	}
	if kinds["train"] != 360/5 || kinds["epoch"] != 30 || kinds["val"] != 30+3 || kinds["samples"] != 30 {
		t.Errorf("metrics records by type: %v", kinds)
	}
	// Epoch checkpoints (save_every 1) are loadable model dirs; latest points at the last.
	dir, err := LatestCheckpoint(tr.RunDir)
	if err != nil || filepath.Base(dir) != "epoch-030" {
		t.Fatalf("latest checkpoint %q, %v", dir, err)
	}
}

// The transformer variant with only_prefix: GPT-2 gets no gradients and is
// unchanged after training; the mapper changes.
func TestFrozenGPT2(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.MappingType, c.PrefixLengthClip, c.NumLayers, c.OnlyPrefix = "transformer", 4, 2, true
	c.Epochs, c.SampleCaptions = 1, 0
	tr := newTrainer(t, c)
	before := paramValues(tr)
	for _, p := range tr.params {
		if strings.HasPrefix(p.Name, "gpt.") {
			t.Fatalf("frozen GPT-2 parameter %s is trainable", p.Name)
		}
	}
	runTrainer(t, tr)
	after := paramValues(tr)
	changed := 0
	for _, p := range tr.Model.Store.All() {
		g := p.Tensor.MustGrad(false)
		defined := g.MustDefined()
		g.MustDrop()
		same := equalF64(before[p.Name], after[p.Name])
		if strings.HasPrefix(p.Name, "gpt.") {
			if defined {
				t.Errorf("%s has a gradient", p.Name)
			}
			if !same {
				t.Errorf("%s changed in training", p.Name)
			}
		} else if !same {
			changed++
		}
	}
	if changed == 0 {
		t.Error("no mapper parameter changed")
	}
}

func equalF64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const childEnv = "CLIPCAP_TRAIN_TEST_CHILD"

// resumeConfig has dropout active (GPT-2's 0.1) and bucketing, so a resume
// must restore the permutation and dropout streams as well as the weights.
func resumeConfig(store, out string) Config {
	c := tinyConfig(store, out)
	c.Epochs, c.CkptEvery, c.KeepLast, c.ValEvery = 3, 4, 2, 7
	c.BucketByLength, c.SampleCaptions = true, 1
	return c
}

// TestResumeChild is the training process that TestResumeBitIdentical kills.
func TestResumeChild(t *testing.T) {
	args := os.Getenv(childEnv)
	if args == "" {
		t.Skip("helper process for TestResumeBitIdentical")
	}
	store, out, _ := strings.Cut(args, "|")
	tr := newTrainer(t, resumeConfig(store, out))
	tr.afterStep = func(int) { time.Sleep(30 * time.Millisecond) } // give the parent time to kill
	runTrainer(t, tr)
}

// Kill -9 a training process after a checkpoint, resume it, and compare with
// an uninterrupted run: the final weights and optimizer state are identical
// to the bit.
func TestResumeBitIdentical(t *testing.T) {
	store := makeStore(t, 2) // 32 train captions: 4 steps per epoch, 12 in all
	whole, killed := t.TempDir(), t.TempDir()
	runTrainer(t, newTrainer(t, resumeConfig(store, whole)))

	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+store+"|"+killed)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(killed, "run")
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(runDir, LatestFile))
		if name := strings.TrimSpace(string(b)); name >= "step-00000005" && strings.HasPrefix(name, "step-") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child wrote no step checkpoint in time; output:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL: no chance to save anything more
	cmd.Wait()
	if strings.Contains(out.String(), "PASS") {
		t.Fatalf("child finished before it was killed:\n%s", out.String())
	}
	tr, err := Resume(runDir, nil, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.st.Step >= 12 || tr.st.Step < 4 {
		t.Fatalf("resumed at step %d", tr.st.Step)
	}
	runTrainer(t, tr)
	for _, f := range []string{"model.safetensors", OptimizerFile} {
		a, err1 := os.ReadFile(filepath.Join(whole, "run", CheckpointsDir, "epoch-003", f))
		b, err2 := os.ReadFile(filepath.Join(runDir, CheckpointsDir, "epoch-003", f))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s of the resumed run differs from the uninterrupted run's", f)
		}
	}
	// keep_last 2: at most two step checkpoints remain.
	ents, _ := os.ReadDir(filepath.Join(runDir, CheckpointsDir))
	steps := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "step-") {
			steps++
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("leftover temporary checkpoint %s", e.Name())
		}
	}
	if steps > 2 {
		t.Errorf("%d step checkpoints kept, keep_last is 2", steps)
	}
	// The metrics of the resumed run read as one run: steps never go back.
	recs, err := ReadMetrics(filepath.Join(runDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for _, r := range recs {
		if r.Type == "train" {
			if r.Step <= last {
				t.Errorf("train record for step %d after step %d", r.Step, last)
			}
			last = r.Step
		}
	}
}

// Cancelling the context (what SIGINT/SIGTERM do in the CLI) saves a
// checkpoint and returns ErrInterrupted; a fresh New on that run refuses.
func TestInterruptSaves(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.SampleCaptions = 0
	tr := newTrainer(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	tr.afterStep = func(step int) {
		if step == 3 {
			cancel()
		}
	}
	err := tr.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "interrupted at step 3") {
		t.Fatalf("Run after cancel: %v", err)
	}
	dir, err := LatestCheckpoint(tr.RunDir)
	if err != nil || filepath.Base(dir) != "step-00000003" {
		t.Fatalf("latest %q %v", dir, err)
	}
	if _, err := New(c, testLog{t}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("New over an existing run: %v", err)
	}
}
