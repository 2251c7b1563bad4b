package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"gopkg.in/yaml.v3"

	"github.com/clipcap/clipcap/data/featstore"
	"github.com/clipcap/clipcap/data/tokenizer"
	"github.com/clipcap/clipcap/internal/dist"
	"github.com/clipcap/clipcap/internal/progress"
	"github.com/clipcap/clipcap/internal/tensorfile"
	"github.com/clipcap/clipcap/internal/torchrt"
	"github.com/clipcap/clipcap/model/checkpoint"
	"github.com/clipcap/clipcap/model/clipcap"
	"github.com/clipcap/clipcap/model/nn"
)

// ErrInterrupted is returned by Run when its context was cancelled (SIGINT,
// SIGTERM): a checkpoint of the last finished step was saved first.
var ErrInterrupted = errors.New("training interrupted")

// Trainer is one training run.
type Trainer struct {
	Cfg        Config
	RunDir     string
	Model      *clipcap.Model
	Tok        *tokenizer.Tokenizer
	Train, Val *Dataset
	Opt        *AdamW
	Log        io.Writer

	tokDir  string
	dev     gotch.Device
	params  []nn.Named
	st      State
	metrics *metricsWriter
	store   *featstore.Store
	job     *dist.Env   // the data-parallel job to join (InJob)
	group   *dist.Group // its process group once joined; nil: one process
	overlap bool        // the gradient all-reduce starts inside backward (dist_overlap)
	// overlapSeen: a step's buckets were seen starting during backward (logged once).
	overlapSeen bool
	scaler      *lossScaler // fp16's dynamic loss scaling; nil otherwise
	// afterStep, when set (tests), runs after every optimizer step.
	afterStep func(step int)
}

// New prepares a fresh run in cfg.RunDir(), which must not hold checkpoints.
func New(cfg Config, log io.Writer, opts ...Option) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, err := cfg.resolveInitFrom()
	if err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, RunDir: cfg.RunDir(), Log: log}
	for _, o := range opts {
		o(t)
	}
	if _, err := os.Stat(filepath.Join(t.RunDir, LatestFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a run with checkpoints: resume it with --resume, or choose another prefix/out_dir", t.RunDir)
	}
	if t.leader() { // the one rank that writes checkpoints
		cleanTemps(t.RunDir)
	}
	if err := t.setup(); err != nil {
		return nil, err
	}
	m, err := cfg.NewModel(int64(t.store.Dim()), t.dev)
	if err == nil {
		err = checkVocab(t.Tok.VocabSize(), m, cfg.Tokenizer)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	t.attach(m)
	if err := t.syncWeights(); err != nil {
		t.Close()
		return nil, err
	}
	if !t.leader() {
		return t, nil
	}
	if err := os.MkdirAll(t.RunDir, 0o755); err != nil {
		t.Close()
		return nil, err
	}
	y, _ := yaml.Marshal(cfg)
	if err := writeFile(filepath.Join(t.RunDir, "config.yaml"), y); err != nil {
		t.Close()
		return nil, err
	}
	if t.metrics, err = openMetrics(t.RunDir, 0, false); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Resume continues the run in runDir from its latest checkpoint, with its
// saved config plus the key=value overrides in sets.
func Resume(runDir string, sets []string, log io.Writer, opts ...Option) (*Trainer, error) {
	dir, err := LatestCheckpoint(runDir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	cfg := st.Config
	for _, s := range sets {
		if err := cfg.Set(s); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, RunDir: runDir, Log: log, st: st}
	for _, o := range opts {
		o(t)
	}
	if t.leader() {
		cleanTemps(runDir)
	}
	if err := t.setup(); err != nil {
		return nil, err
	}
	m, _, err := checkpoint.Load(dir, t.dev)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.attach(m)
	src, err := tensorfile.OpenSafetensors(filepath.Join(dir, OptimizerFile))
	if err != nil {
		t.Close()
		return nil, err
	}
	err = t.Opt.load(src, st.OptSteps)
	src.Close()
	if err != nil {
		t.Close()
		return nil, err
	}
	if err := t.syncWeights(); err != nil {
		t.Close()
		return nil, err
	}
	t.worldChange(st.World)
	if !t.leader() {
		return t, nil
	}
	if t.metrics, err = openMetrics(runDir, st.Step, true); err != nil {
		t.Close()
		return nil, err
	}
	fmt.Fprintf(log, "resuming %s from %s: step %d, epoch %d, batch %d\n", runDir, dir, st.Step, st.Epoch+1, st.Batch)
	return t, nil
}

// setup opens the device, tokenizer and datasets.
func (t *Trainer) setup() error {
	var err error
	if t.dev, err = Device(t.Cfg.Device); err != nil {
		return err
	}
	if err := t.joinJob(); err != nil {
		return err
	}
	if t.Tok, t.tokDir, err = t.Cfg.LoadTokenizer(); err != nil {
		return err
	}
	open := featstore.Open
	if t.Cfg.VerifyData {
		open = featstore.Verify
	}
	if t.store, err = open(t.Cfg.Data); err != nil {
		return err
	}
	maxLen, _ := t.Cfg.maxTokensCap()
	if t.Train, err = NewDataset(t.store, t.Cfg.TrainSplit, t.Tok, maxLen); err != nil {
		t.Close()
		return err
	}
	if n := t.Train.Dropped; n > 0 {
		fmt.Fprintf(t.Log, "note: dropped %d empty captions of split %q of %s (no target tokens)\n", n, t.Cfg.TrainSplit, t.Cfg.Data)
	}
	if t.Train.Len() < t.Cfg.BS*t.Cfg.GradAccum*t.world() {
		t.Close()
		return fmt.Errorf("train_split %q of %s has %d captions, fewer than one optimizer step (bs %d × grad_accum %d × world size %d)",
			t.Cfg.TrainSplit, t.Cfg.Data, t.Train.Len(), t.Cfg.BS, t.Cfg.GradAccum, t.world())
	}
	if t.Cfg.ValSplit != "" {
		if t.Val, err = NewDataset(t.store, t.Cfg.ValSplit, t.Tok, t.Train.MaxLen); err != nil {
			t.Close()
			return err
		}
		if n := t.Val.Dropped; n > 0 {
			fmt.Fprintf(t.Log, "note: dropped %d empty captions of split %q of %s (no target tokens)\n", n, t.Cfg.ValSplit, t.Cfg.Data)
		}
		if t.Val.Len() == 0 {
			fmt.Fprintf(t.Log, "note: split %q of %s has no captions; no validation\n", t.Cfg.ValSplit, t.Cfg.Data)
			t.Val = nil
		}
	}
	return nil
}

func (t *Trainer) attach(m *clipcap.Model) {
	// Training's ops are big enough for libtorch's OpenMP pool on every core.
	torchrt.ComputeOnAllCores()
	t.Model = m
	t.params = m.Store.Trainable()
	t.Opt = NewAdamW(t.params, t.Cfg.WeightDecay)
	m.Store.SetAutocast(t.Cfg.computeDType())
	if t.Cfg.Precision == "fp16" {
		t.scaler = newLossScaler(t.st.LossScale, t.st.LossScaleGood)
	}
}

// Close releases the store and the metrics file.
func (t *Trainer) Close() {
	if t.metrics != nil {
		t.metrics.close()
		t.metrics = nil
	}
	if t.store != nil {
		t.store.Close()
		t.store = nil
	}
	t.releaseJob()
}

// stepsPerEpoch is optimizer steps per epoch (drop_last batches, whole
// accumulation groups).
func (t *Trainer) stepsPerEpoch() int {
	return t.Train.Len() / (t.Cfg.BS * t.world()) / t.Cfg.GradAccum
}

// Run trains until the configured epochs are done or ctx is cancelled.
func (t *Trainer) Run(ctx context.Context) error {
	// libtorch keeps grad mode per OS thread (see noGrad): one thread for
	// the whole loop.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return t.run(ctx, -1)
}

// run stops (without a checkpoint) after stopAt optimizer steps when
// stopAt >= 0: the tests' way to compare the state at a given step.
func (t *Trainer) run(ctx context.Context, stopAt int) error {
	spe := t.stepsPerEpoch()
	t.st.Total = t.Cfg.Epochs * spe
	if t.Cfg.Epochs == 0 && t.st.Step == 0 {
		// epochs: 0 saves the initialized model: an untrained baseline.
		return t.saveCheckpoint("epoch-000")
	}
	var bar *progress.Bar
	if t.Cfg.Progress {
		// A bar on a terminal; in a log, a line every log_every steps.
		bar = progress.New(t.Log, int64(t.st.Total), progress.Options{Desc: "train", Unit: "steps",
			Every: int64(t.Cfg.LogEvery), Done: int64(t.st.Step)})
	}
	start := time.Now()
	base := t.st.Elapsed
	elapsed := func() float64 { return base + time.Since(start).Seconds() }
	logStart, logSamples := time.Now(), 0
	var logLoss float64
	var logN int
	for t.st.Epoch < t.Cfg.Epochs {
		epoch := t.st.Epoch
		global := t.Train.Plan(t.Cfg.Seed, epoch, t.Cfg.BS*t.world(), t.Cfg.BucketByLength)[:spe*t.Cfg.GradAccum]
		plan, tokens := rankPlan(global, t.rank(), t.world()), t.Train.stepTokens(global, t.Cfg.GradAccum)
		stop := make(chan struct{})
		batches := t.Train.prefetch(plan, t.st.Batch, stop)
		// halt stops the prefetcher and waits for it to finish its batch:
		// every way out of the epoch, an error included, must leave no reader
		// of the feature store behind (Close unmaps it).
		halt := func() {
			close(stop)
			for range batches {
			}
		}
		var epochLoss float64
		var epochN int
		for t.st.Batch < len(plan) {
			if stopAt >= 0 && t.st.Step >= stopAt {
				halt()
				return nil
			}
			loss, n, stopNow, err := t.optimizerStep(ctx, batches, tokens[t.st.Batch/t.Cfg.GradAccum])
			if err != nil {
				halt()
				return err
			}
			if t.afterStep != nil {
				t.afterStep(t.st.Step)
			}
			// A lone process stops right after the step a signal reached; ranks
			// learn of each other's signals in the next step's all-reduce.
			stopNow = stopNow || (t.world() == 1 && ctx.Err() != nil)
			logLoss, logN, logSamples = logLoss+loss, logN+1, logSamples+n
			epochLoss, epochN = epochLoss+loss, epochN+1
			bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f lr %.2e", epoch+1, t.Cfg.Epochs, loss, t.lr(t.st.Step-1)))
			bar.Add(1)
			if t.st.Step%t.Cfg.LogEvery == 0 {
				sps := float64(logSamples) / time.Since(logStart).Seconds()
				t.st.Elapsed = elapsed()
				err = t.metrics.write(Record{Type: "train", Step: t.st.Step, Epoch: epoch + 1, Loss: f64(logLoss / float64(logN)),
					LR: f64(t.lr(t.st.Step - 1)), SamplesPerSec: f64(sps), Time: t.st.Elapsed})
				if err != nil {
					halt()
					return err
				}
				logStart, logSamples, logLoss, logN = time.Now(), 0, 0, 0
			}
			if t.Cfg.ValEvery > 0 && t.st.Step%t.Cfg.ValEvery == 0 {
				if err := t.validate(elapsed()); err != nil {
					halt()
					return err
				}
			}
			t.st.Elapsed = elapsed()
			if stopNow {
				halt()
				name := fmt.Sprintf("step-%08d", t.st.Step)
				if err := t.saveCheckpoint(name); err != nil {
					return fmt.Errorf("%w; saving its checkpoint failed: %v", ErrInterrupted, err)
				}
				return fmt.Errorf("%w at step %d; checkpoint %s saved; continue with --resume %s", ErrInterrupted, t.st.Step, name, t.RunDir)
			}
			if t.Cfg.CkptEvery > 0 && t.st.Step%t.Cfg.CkptEvery == 0 {
				if err := t.saveCheckpoint(fmt.Sprintf("step-%08d", t.st.Step)); err != nil {
					halt()
					return err
				}
			}
		}
		halt()
		if err := t.endEpoch(epoch, epochLoss, epochN, elapsed); err != nil {
			return err
		}
	}
	bar.Finish()
	return nil
}

// optimizerStep runs grad_accum micro-batches and one AdamW step. It
// returns the step's loss and number of samples over all ranks, and whether
// any rank's ctx was cancelled (a signal may reach only some ranks: all stop
// after the same step). stepTokens is the number of caption tokens in the
// step over all ranks.
func (t *Trainer) optimizerStep(ctx context.Context, batches <-chan batchOrErr, stepTokens int) (float64, int, bool, error) {
	var total float64
	n := 0
	for k := 0; k < t.Cfg.GradAccum; k++ {
		be, ok := <-batches
		if !ok {
			return 0, 0, false, errors.New("internal: batch prefetcher ended early")
		}
		if be.err != nil {
			return 0, 0, false, be.err
		}
		// Dropout masks depend only on (seed, micro-batch, rank), never on
		// history.
		ManualSeed(t.Cfg.Seed + 1 + t.st.Micro*int64(t.world()) + int64(t.rank()))
		db := toDevice(be.b, t.dev)
		loss, err := t.Model.Loss(db.clip, db.tokens, db.mask, true)
		db.free()
		if err != nil {
			return 0, 0, false, err
		}
		// The step's loss is the sum over its tokens on every rank divided
		// by their number: each micro-batch's mean is weighted by its share
		// of those tokens, and the all-reduce sums the ranks' gradients. One
		// micro-batch on one rank: the weight is exactly 1.
		if scale := float64(db.ntokens) / float64(stepTokens); scale != 1 {
			loss = loss.MustMulScalar(ts.FloatScalar(scale), true)
		}
		loss = t.scaler.scaleLoss(loss)
		if t.overlap && k == t.Cfg.GradAccum-1 {
			// The step's last backward starts each gradient bucket's
			// all-reduce as soon as the bucket is complete; the micro-batches
			// before it only accumulate (DDP's no_sync).
			if err := t.group.ExpectBackward(); err != nil {
				loss.MustDrop()
				return 0, 0, false, err
			}
		}
		if err := loss.Backward(); err != nil {
			loss.MustDrop()
			return 0, 0, false, fmt.Errorf("backward: %w", err)
		}
		lv := loss.Float64Values(true)[0] / t.scaler.factor()
		// One rank stopping alone would leave the others waiting in the
		// all-reduce; with several ranks the (reduced) gradient check below
		// stops them all at once. Under fp16 loss scaling an overflow is
		// the scaler's to handle: it skips the step.
		if !finite(lv) && t.world() <= 1 && t.scaler == nil {
			return 0, 0, false, t.nonFinite(fmt.Sprintf("the loss of micro-batch %d is %g", t.st.Batch, lv))
		}
		total += lv
		n += be.b.B
		t.st.Micro++
		t.st.Batch++
	}
	// One round of collectives a step: the gradients, the loss parts and
	// whether any rank was asked to stop.
	sums := []float64{total, 0}
	if ctx.Err() != nil {
		sums[1] = 1
	}
	if err := t.reduceGrads(sums); err != nil {
		return 0, 0, false, err
	}
	if t.overlap && !t.overlapSeen && t.group.StartedInBackward > 0 {
		t.overlapSeen = true
		fmt.Fprintf(t.Log, "data parallel: %d gradient bucket(s) of at most %g MiB started their all-reduce during backward\n",
			t.group.StartedInBackward, t.Cfg.DistBucketMB)
	}
	total, stop := sums[0], sums[1] > 0
	// The reduced gradients are the same on every rank, so every rank
	// makes the same decision to step, to skip or to stop.
	if t.scaler.unscale(t.params) {
		// Check the gradients before the optimizer folds them into the
		// weights and moments (clipping by a NaN norm is a no-op, so it
		// cannot help); under loss scaling, unscale has checked them.
		norm := 0.0
		if t.Cfg.GradClip > 0 {
			norm = ClipGradNorm(t.params, t.Cfg.GradClip)
		} else if t.scaler == nil {
			norm = gradNorm(t.params)
		}
		if !finite(norm) {
			what := fmt.Sprintf("the gradient norm is %g", norm)
			if name, _ := firstNonFinite(t.params, true); name != "" {
				what += " (" + name + " holds NaN/Inf)"
			}
			return 0, 0, false, t.nonFinite(what)
		}
		t.Opt.Step(t.lr(t.st.Step))
	} else {
		fmt.Fprintf(t.Log, "fp16: step %d has inf/NaN gradients: skipped, loss scale now %g\n", t.st.Step+1, t.scaler.scale)
	}
	ZeroGrad(t.params)
	t.st.Step++
	if t.st.Step%trimEvery == 0 {
		releaseFreeMemory()
	}
	// Each micro-batch loss was scaled by its share of the step's tokens, so
	// the sum over micro-batches and ranks is the step's.
	return total, n * t.world(), stop, nil
}

// nonFinite is the error that stops the run at the current step.
func (t *Trainer) nonFinite(what string) error {
	last := "none yet"
	if dir, err := LatestCheckpoint(t.RunDir); err == nil {
		last = dir
	}
	return fmt.Errorf("%w: optimizer step %d (epoch %d): %s; stopped before the step, nothing saved (latest checkpoint: %s). Lower lr, set grad_clip, or check the feature store",
		ErrNonFinite, t.st.Step+1, t.st.Epoch+1, what, last)
}

// lr is the learning rate of optimizer step `step` (0-based).
func (t *Trainer) lr(step int) float64 {
	return t.Cfg.LR * LinearWarmup(step, t.Cfg.WarmupSteps, t.st.Total)
}

func (t *Trainer) endEpoch(epoch int, loss float64, n int, elapsed func() float64) error {
	now := elapsed()
	rec := Record{Type: "epoch", Step: t.st.Step, Epoch: epoch + 1, Time: now}
	if n > 0 {
		rec.Loss = f64(loss / float64(n))
	}
	if err := t.metrics.write(rec); err != nil {
		return err
	}
	if err := t.validate(now); err != nil {
		return err
	}
	if err := t.sampleCaptions(epoch, now); err != nil {
		return err
	}
	t.st.Epoch, t.st.Batch = epoch+1, 0
	t.st.Elapsed = elapsed()
	if (epoch+1)%t.Cfg.SaveEvery == 0 || epoch+1 == t.Cfg.Epochs {
		return t.saveCheckpoint(fmt.Sprintf("epoch-%03d", epoch+1))
	}
	return nil
}
