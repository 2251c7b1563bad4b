package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/train"
)

// asMain makes the test binary act as clipcap itself when the launcher
// starts it as a worker.
const asMain = "CLIPCAP_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMain) != "" {
		os.Exit(run(os.Args[1:]))
	}
	// run's compute commands re-execute the process with tuned runtime
	// settings (torchrt.Tune); inside the test binary that restarted every
	// test from the top and left the first run's temporary directories behind.
	os.Setenv("CLIPCAP_NO_REEXEC", "1")
	os.Exit(m.Run())
}

// tinyTrainConfig writes a 32-caption store and a small MLP config.
func tinyTrainConfig(t *testing.T) (config, out string) {
	t.Helper()
	dir := t.TempDir()
	w, err := featstore.Create(filepath.Join(dir, "store"), featstore.Meta{CLIPModel: "synthetic", EmbedDim: 8, ShardInputs: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 32; i++ {
		emb := make([]float32, 8)
		emb[i%8] = 1
		if err := w.Add(emb, []featstore.Caption{{ImageID: fmt.Sprint(i), Caption: fmt.Sprintf("image %d.", i%8), Split: "train"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "runs")
	config = filepath.Join(dir, "run.yaml")
	y := fmt.Sprintf(`data: %s
out_dir: %s
prefix: job
epochs: 2
bs: 4
prefix_length: 2
gpt2: gpt2
gpt2_random: true
gpt2_config: "gpt2:n_embd=16,n_layer=1,n_head=2,n_positions=32,vocab_size=257"
tokenizer: bytelevel
val_split: ""
sample_captions: 0
log_every: 1
ckpt_every: 3
progress: false
`, filepath.Join(dir, "store"), out)
	if err := os.WriteFile(config, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, out
}

// clipcap train --nproc-per-node 2: one run dir, one metrics stream (every
// step once), one set of checkpoints.
func TestTrainNprocPerNode(t *testing.T) {
	config, out := tinyTrainConfig(t)
	t.Setenv(asMain, "1")
	if err := runTrain([]string{"--nproc-per-node", "2", "--config", config}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 || ents[0].Name() != "job" {
		t.Fatalf("out_dir holds %v, want one run dir", ents)
	}
	recs, err := train.ReadMetrics(filepath.Join(out, "job", train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, r := range recs {
		if r.Type == "train" {
			steps = append(steps, fmt.Sprint(r.Step))
		}
	}
	// 32 captions / (bs 4 × 2 workers) = 4 steps per epoch, 2 epochs.
	if got := strings.Join(steps, " "); got != "1 2 3 4 5 6 7 8" {
		t.Errorf("train records at steps %s, want each of 1..8 once", got)
	}
	ckpts, _ := os.ReadDir(filepath.Join(out, "job", train.CheckpointsDir))
	var names []string
	for _, e := range ckpts {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "epoch-001 epoch-002 step-00000003 step-00000006" {
		t.Errorf("checkpoints %s", got)
	}
}

func TestTrainJobEnvErrors(t *testing.T) {
	config, _ := tinyTrainConfig(t)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"RANK": "0", "WORLD_SIZE": "0"}, nil, "WORLD_SIZE=0: the world size must be at least 1"},
		{map[string]string{"RANK": "3", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}, nil, "RANK=3 is outside the world of WORLD_SIZE=2"},
		{map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}, []string{"--nproc-per-node", "2"}, "already inside a job"},
		{nil, []string{"--nproc-per-node", "-1"}, "--nproc-per-node: must be at least 1"},
	} {
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		err := runTrain(append([]string{"--config", config}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want %q", c.env, c.args, err, c.want)
		}
		for k := range c.env {
			os.Unsetenv(k)
		}
	}
}
