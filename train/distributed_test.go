package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/internal/dist"
	"github.com/clipcap/clipcap/model/checkpoint"
)

const workerEnv = "CLIPCAP_TRAIN_DIST_WORKER"

// workerSpec is what a TestDistWorker process runs.
type workerSpec struct {
	Config   Config
	Sets     map[int][]string // extra key=value per rank (config mismatch test)
	Resume   string           // run dir to resume instead of a fresh run
	HangRank int              // this rank stops responding after step HangStep
	HangStep int              // 0: never
	StepWait time.Duration    // pause after each step (time for the test to act)
}

// TestDistWorker is one rank of the jobs the tests below launch.
func TestDistWorker(t *testing.T) {
	path := os.Getenv(workerEnv)
	if path == "" {
		t.Skip("helper process for the data-parallel tests")
	}
	if err := distWorker(path); err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		os.Exit(1)
	}
}

func distWorker(path string) error {
	if _, err := dist.PinFromEnv(); err != nil {
		return err
	}
	var spec workerSpec
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	env, ok, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	var opts []Option
	if ok { // else one worker: the benchmark's baseline
		opts = append(opts, InJob(env))
	}
	var tr *Trainer
	if spec.Resume != "" {
		tr, err = Resume(spec.Resume, nil, os.Stderr, opts...)
	} else {
		c := spec.Config
		for _, s := range spec.Sets[env.Rank] {
			if err := c.Set(s); err != nil {
				return err
			}
		}
		tr, err = New(c, os.Stderr, opts...)
	}
	if err != nil {
		return err
	}
	defer tr.Close()
	tr.afterStep = func(step int) {
		time.Sleep(spec.StepWait)
		if step == spec.HangStep && env.Rank == spec.HangRank {
			time.Sleep(time.Hour)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return tr.Run(ctx)
}

// launch runs spec on n workers with the built-in launcher, one thread
// each, pinned as clipcap train --nproc-per-node pins them.
func launch(t testing.TB, n int, spec workerSpec, started func(rank, pid int)) (string, error) {
	t.Helper()
	return launchPinned(t, n, spec, started, true)
}

func launchPinned(t testing.TB, n int, spec workerSpec, started func(rank, pid int), pin bool) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	err := dist.Launch{N: n, Cmd: []string{os.Args[0], "-test.run=^TestDistWorker$"},
		Env: append(os.Environ(), workerEnv+"="+path), Threads: 1, Pin: pin, Stderr: &out, Started: started}.Run()
	return out.String(), err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// 2 workers × bs 4 against 1 worker × bs 8, same seed, 6 optimizer steps:
// every parameter agrees within 1e-5 of its largest magnitude. Dropout is 0:
// masks are drawn per rank, so with dropout on the two runs would drop
// different units by design (each rank seeds with its rank).
func TestDataParallelEquivalence(t *testing.T) {
	variants := map[string]func(c *Config){
		"mlp-gpt2-tuned": func(c *Config) {},
		"transformer-gpt2-frozen": func(c *Config) {
			c.MappingType, c.PrefixLengthClip, c.NumLayers, c.OnlyPrefix = "transformer", 4, 2, true
		},
		// Buckets of 4 KiB, their all-reduce started inside backward, and
		// 2 micro-batches a step (the first only accumulates): the same
		// update as one process without any of it.
		"mlp-overlap-accum": func(c *Config) {
			c.DistOverlap, c.DistBucketMB, c.GradAccum = "on", 4.0/1024, 2
		},
	}
	store := makeStore(t, 3) // 48 train captions: 6 steps of 8
	for name, variant := range variants {
		t.Run(name, func(t *testing.T) {
			c := tinyConfig(store, t.TempDir())
			c.Epochs, c.Dropout, c.SampleCaptions, c.WarmupSteps = 1, "0", 0, 2
			c.GradClip = 1 // clipping must see the averaged gradient
			variant(&c)
			one := c
			one.BS = 8 / c.GradAccum
			tr := newTrainer(t, one)
			init := paramValues(tr)
			runTrainer(t, tr)
			if tr.st.Step != 6 {
				t.Fatalf("single run made %d steps, want 6", tr.st.Step)
			}
			want := paramValues(tr)

			two := c
			two.BS, two.OutDir = 4/c.GradAccum, t.TempDir()
			out, err := launch(t, 2, workerSpec{Config: two}, nil)
			if err != nil {
				t.Fatalf("2 workers: %v\n%s", err, out)
			}
			if started := regexp.MustCompile(`(\d+) gradient bucket\(s\) of at most \S+ MiB started their all-reduce during backward`).FindStringSubmatch(out); (started != nil) != (c.DistOverlap == "on") {
				t.Fatalf("dist_overlap %s, but the log says %q about the all-reduce during backward:\n%s", c.DistOverlap, started, out)
			} else if started != nil && started[1] == "1" {
				t.Fatalf("only 1 bucket started during backward; 4 KiB buckets make several:\n%s", out)
			}
			m, _, err := checkpoint.Load(filepath.Join(two.RunDir(), CheckpointsDir, "epoch-001"), gotch.CPU)
			if err != nil {
				t.Fatal(err)
			}
			moved := 0.0
			for _, p := range m.Store.All() {
				got := p.Tensor.MustDetach(false).Float64Values(true)
				w := want[p.Name]
				scale := 0.0
				for _, x := range w {
					scale = max(scale, math.Abs(x))
				}
				for i := range w {
					if d := math.Abs(got[i] - w[i]); d > 1e-5*scale {
						t.Fatalf("%s[%d]: 2 workers %v, 1 worker %v (|diff| %.3g > 1e-5 × %.3g)", p.Name, i, got[i], w[i], d, scale)
					}
					moved = max(moved, math.Abs(w[i]-init[p.Name][i]))
				}
			}
			if moved < 1e-3 {
				t.Fatalf("training moved no parameter by more than %g: the comparison shows nothing", moved)
			}
			// Validation batches are split over the ranks and their sums
			// added: the same validation loss as one process.
			vals := func(dir string) []float64 {
				recs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
				if err != nil {
					t.Fatal(err)
				}
				var out []float64
				for _, r := range recs {
					if r.Type == "val" {
						out = append(out, *r.ValLoss)
					}
				}
				return out
			}
			v1, v2 := vals(one.RunDir()), vals(two.RunDir())
			if len(v1) != 1 || len(v2) != 1 || math.Abs(v1[0]-v2[0]) > 1e-5*v1[0] {
				t.Errorf("validation loss: 1 worker %v, 2 workers %v", v1, v2)
			}
		})
	}
}

// distConfig is a 2-worker run of 3 epochs × 4 steps with dropout on and
// bucketing: what a resume must reproduce.
func distConfig(store, out string) Config {
	c := tinyConfig(store, out)
	c.Epochs, c.BS, c.CkptEvery, c.KeepLast, c.ValEvery = 3, 4, 2, 0, 5
	c.BucketByLength, c.SampleCaptions, c.LogEvery = true, 1, 1
	return c
}

// A job launched on 2 workers writes one run dir, one metrics stream and
// one set of checkpoints. Killing one worker with -9 ends the job, non-zero,
// within 60 s, naming the lost rank; --resume then finishes it, equal to
// the uninterrupted job byte for byte.
func TestDataParallelKillAndResume(t *testing.T) {
	store := makeStore(t, 2) // 32 captions: 4 steps of 2 × 4 per epoch
	whole := distConfig(store, t.TempDir())
	if out, err := launch(t, 2, workerSpec{Config: whole}, nil); err != nil {
		t.Fatalf("uninterrupted job: %v\n%s", err, out)
	}
	ents, _ := os.ReadDir(whole.OutDir)
	if len(ents) != 1 || ents[0].Name() != "run" {
		t.Fatalf("out_dir holds %v, want the one run dir", ents)
	}
	recs, err := ReadMetrics(filepath.Join(whole.RunDir(), MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var trainSteps []int
	samples := 0
	for _, r := range recs {
		switch r.Type {
		case "train":
			trainSteps = append(trainSteps, r.Step)
		case "samples":
			samples++
		}
	}
	if fmt.Sprint(trainSteps) != "[1 2 3 4 5 6 7 8 9 10 11 12]" || samples != 3 {
		t.Errorf("metrics: train records at steps %v and %d sample records; want each step once and 3", trainSteps, samples)
	}
	ckpts, _ := os.ReadDir(filepath.Join(whole.RunDir(), CheckpointsDir))
	var names []string
	for _, e := range ckpts {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "epoch-001 epoch-002 epoch-003 step-00000002 step-00000004 step-00000006 step-00000008 step-00000010 step-00000012" {
		t.Errorf("checkpoints: %s", got)
	}

	killed := distConfig(store, t.TempDir())
	var mu sync.Mutex
	pids := map[int]int{}
	done := make(chan struct{})
	var out string
	var jobErr error
	go func() {
		defer close(done)
		out, jobErr = launch(t, 2, workerSpec{Config: killed, HangRank: 1, HangStep: 7}, func(rank, pid int) {
			mu.Lock()
			pids[rank] = pid
			mu.Unlock()
		})
	}()
	// Rank 1 stops after step 7; the step-6 checkpoint is then on disk.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(killed.RunDir(), LatestFile))
		if strings.TrimSpace(string(b)) == "step-00000006" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no step-6 checkpoint within 2 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	victim := pids[1]
	mu.Unlock()
	begin := time.Now()
	syscall.Kill(victim, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("job still running 60 s after kill -9 of rank 1")
	}
	t.Logf("job ended %v after the kill: %v", time.Since(begin).Round(time.Millisecond), jobErr)
	if jobErr == nil || !strings.Contains(jobErr.Error(), "worker rank 1 of 2 was killed by signal 9") {
		t.Fatalf("job error %v, want one naming rank 1 and the kill\n%s", jobErr, out)
	}
	if !strings.Contains(out, "lost rank(s) 1 of 2") {
		t.Errorf("rank 0 did not name the lost rank:\n%s", out)
	}

	if out, err := launch(t, 2, workerSpec{Resume: killed.RunDir()}, nil); err != nil {
		t.Fatalf("resumed job: %v\n%s", err, out)
	}
	for _, f := range []string{"model.safetensors", OptimizerFile} {
		a, err1 := os.ReadFile(filepath.Join(whole.RunDir(), CheckpointsDir, "epoch-003", f))
		b, err2 := os.ReadFile(filepath.Join(killed.RunDir(), CheckpointsDir, "epoch-003", f))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s of the resumed job differs from the uninterrupted job's", f)
		}
	}
}

// A worker that hangs: the other gives up after dist_timeout, naming it.
func TestDataParallelHangTimesOut(t *testing.T) {
	c := distConfig(makeStore(t, 2), t.TempDir())
	c.DistTimeout = "3s"
	begin := time.Now()
	out, err := launch(t, 2, workerSpec{Config: c, HangRank: 1, HangStep: 2}, nil)
	if err == nil || !strings.Contains(err.Error(), "worker rank 0 of 2 exited with status 1") {
		t.Fatalf("job error %v, want rank 0 failing\n%s", err, out)
	}
	if !strings.Contains(out, "lost rank(s) 1 of 2 (died, or hung past dist_timeout 3s)") {
		t.Errorf("rank 0 did not name the hung rank:\n%s", out)
	}
	if d := time.Since(begin); d > 60*time.Second {
		t.Errorf("job took %v with dist_timeout 3s", d)
	}
}

// Ranks started with different configs fail at rendezvous, naming the key.
func TestDataParallelConfigMismatch(t *testing.T) {
	c := distConfig(makeStore(t, 2), t.TempDir())
	c.DistTimeout = "20s"
	begin := time.Now()
	out, err := launch(t, 2, workerSpec{Config: c, Sets: map[int][]string{1: {"lr=0.5"}}}, nil)
	if err == nil || !strings.Contains(out, "rank 1's config differs from rank 0's (lr: 0.003 vs 0.5)") {
		t.Fatalf("job error %v; output:\n%s", err, out)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("took %v", d)
	}
}

// SIGTERM to one worker only: the stop flag in each step's all-reduce stops
// both at the same step (the one after the signal, or the next when the
// signal comes after that step's all-reduce) and rank 0 checkpoints it. Resuming that checkpoint on one process
// (another world size) continues at the same sample position and finishes.
func TestDataParallelStopAgreedAndWorldChange(t *testing.T) {
	c := distConfig(makeStore(t, 2), t.TempDir())
	c.CkptEvery = 0
	var mu sync.Mutex
	pids := map[int]int{}
	done := make(chan struct{})
	var out string
	var jobErr error
	go func() {
		defer close(done)
		out, jobErr = launch(t, 2, workerSpec{Config: c, StepWait: 200 * time.Millisecond}, func(rank, pid int) {
			mu.Lock()
			pids[rank] = pid
			mu.Unlock()
		})
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		recs, _ := ReadMetrics(filepath.Join(c.RunDir(), MetricsFile))
		// The first step's record: the stop then falls inside the epoch
		// (step 2 or 3 of 4), which the world change below needs.
		if len(recs) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics within 2 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	syscall.Kill(pids[1], syscall.SIGTERM)
	mu.Unlock()
	<-done
	if jobErr == nil {
		t.Fatalf("interrupted job succeeded:\n%s", out)
	}
	dir, err := LatestCheckpoint(c.RunDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, fmt.Sprintf("interrupted at step %d; checkpoint step-%08d saved", st.Step, st.Step)) || st.World != 2 {
		t.Fatalf("checkpoint %s (step %d, world %d); want rank 0 to stop and save at the same step\n%s", dir, st.Step, st.World, out)
	}
	if st.Step%4 == 0 {
		t.Skipf("stopped at an epoch boundary (step %d): no position inside the epoch to carry over", st.Step)
	}

	var log bytes.Buffer
	tr, err := Resume(c.RunDir(), nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// 2 ranks × bs 4 per micro-batch: the same samples are one bs-4
	// micro-batch per 4 samples on one rank.
	consumed := (st.Step % 4) * 8
	want := fmt.Sprintf("continues at sample %d of its shuffle (of %d consumed)", consumed, consumed)
	if !strings.Contains(log.String(), want) || tr.st.Batch != consumed/4 {
		t.Fatalf("resume log %q, batch %d; want %q", log.String(), tr.st.Batch, want)
	}
	runTrainer(t, tr)
	if tr.st.Epoch != 3 {
		t.Fatalf("resumed run ended in epoch %d", tr.st.Epoch)
	}
}
