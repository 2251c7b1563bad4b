package train

import (
	"fmt"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"gopkg.in/yaml.v3"

	"github.com/clipcap/clipcap/internal/dist"
)

// Data-parallel training. Every rank runs the same loop over its own slice
// of one seeded shuffle: global micro-batch k of bs·world captions (the
// batch a single process with bs·world would read) is dealt out rank-strided,
// rank r taking its elements r, r+world, ... Gradients are averaged over the
// ranks before each optimizer step, and each rank's loss is scaled so that
// the average is the loss summed over the step's tokens on every rank,
// divided by their number: world workers × bs B train exactly as one worker
// × bs world·B, up to float summation order. Only rank 0 writes the run dir.

// Option configures New and Resume.
type Option func(*Trainer)

// InJob makes the trainer one rank of the data-parallel job env describes
// (see dist.FromEnv).
func InJob(env dist.Env) Option {
	return func(t *Trainer) { t.job = &env }
}

// world is the number of ranks (1 outside a job).
func (t *Trainer) world() int {
	if t.group == nil {
		return 1
	}
	return t.group.World
}

func (t *Trainer) rank() int {
	if t.group == nil {
		return 0
	}
	return t.group.Rank
}

// leader is the rank that writes checkpoints, metrics and logs.
func (t *Trainer) leader() bool { return t.rank() == 0 }

// Rank and World say where this trainer stands in its job.
func (t *Trainer) Rank() int  { return t.rank() }
func (t *Trainer) World() int { return t.world() }

// validateDist checks the data-parallel keys.
func (c Config) validateDist() error {
	switch c.DistBackend {
	case "", "gloo", "nccl":
	default:
		return fmt.Errorf("dist_backend: %q is not gloo or nccl (empty: nccl on cuda, gloo on cpu)", c.DistBackend)
	}
	if c.DistBackend == "nccl" && c.Device != "cuda" {
		return fmt.Errorf("dist_backend: nccl needs device cuda (device is %q)", c.Device)
	}
	if _, err := c.distTimeout(); err != nil {
		return err
	}
	if !(c.DistBucketMB > 0) || c.DistBucketMB > 1<<20 {
		return fmt.Errorf("dist_bucket_mb: %v is not a bucket size in MiB (0 < size <= 1048576; default 25)", c.DistBucketMB)
	}
	switch c.DistOverlap {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("dist_overlap: %q is not auto, on or off", c.DistOverlap)
	}
	return nil
}

// overlaps reports whether the gradient all-reduce runs during backward.
// auto: with NCCL, whose collectives run on their own CUDA stream while
// backward computes. Not with Gloo on CPU: there the collective's copies and
// sums take the cores backward computes on, and on 2 pinned workers starting
// buckets during backward measured no gain over reducing them after it
// (neither on the benchmark's model nor on GPT-2 small).
func (c Config) overlaps(backend string) bool {
	switch c.DistOverlap {
	case "on":
		return true
	case "off":
		return false
	}
	return backend == "nccl"
}

func (c Config) distTimeout() (time.Duration, error) {
	if c.DistTimeout == "" {
		return dist.DefaultTimeout, nil
	}
	d, err := time.ParseDuration(c.DistTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("dist_timeout: %q is not a positive duration (e.g. 10m, 90s)", c.DistTimeout)
	}
	return d, nil
}

// joinJob joins the job (when there is one): rendezvous, a check that
// every rank runs the same config and world size, then the process group.
// A CUDA rank takes the device cuda:LOCAL_RANK.
func (t *Trainer) joinJob() error {
	if t.job == nil || t.group != nil {
		return nil
	}
	backend := t.Cfg.DistBackend
	if backend == "" {
		backend = "gloo"
		if t.Cfg.Device == "cuda" {
			backend = "nccl"
		}
	}
	timeout, _ := t.Cfg.distTimeout()
	env := *t.job
	if t.Cfg.Device == "cuda" {
		if n := gotch.CUDA.DeviceCount(); int64(env.LocalRank) >= n {
			return fmt.Errorf("rank %d: LOCAL_RANK %d but this node has %d CUDA devices", env.Rank, env.LocalRank, n)
		}
		t.dev = gotch.CudaBuilder(uint(env.LocalRank))
	}
	fmt.Fprintf(t.Log, "rank %d of %d (%s): rendezvous at %s:%d, backend %s, timeout %v\n",
		env.Rank, env.World, env.Source, env.Addr, env.Port, backend, timeout)
	g, err := dist.Init(env, backend, timeout)
	if err != nil {
		return err
	}
	if err := g.Agree(t.jobFingerprint(env.World), configDiff); err != nil {
		g.Close()
		return err
	}
	host := ""
	if env.Loopback() {
		host = "127.0.0.1"
	}
	if err := g.Start(host); err != nil {
		g.Close()
		return err
	}
	g.BucketBytes = int64(t.Cfg.DistBucketMB * (1 << 20))
	t.group = g
	t.overlap = t.Cfg.overlaps(backend)
	return nil
}

// jobFingerprint is what every rank must agree on: the effective config
// (device index and logging aside) and the world size.
func (t *Trainer) jobFingerprint(world int) []byte {
	c := t.Cfg
	c.Progress = false
	y, _ := yaml.Marshal(c)
	return append([]byte(fmt.Sprintf("world_size: %d\n", world)), y...)
}

// configDiff names the keys whose values differ between two fingerprints.
func configDiff(a, b []byte) string {
	var ma, mb map[string]any
	yaml.Unmarshal(a, &ma)
	yaml.Unmarshal(b, &mb)
	var out []string
	for _, k := range append(Keys(), "world_size") {
		if fmt.Sprint(ma[k]) != fmt.Sprint(mb[k]) {
			out = append(out, fmt.Sprintf("%s: %v vs %v", k, ma[k], mb[k]))
		}
	}
	if len(out) == 0 {
		return "contents differ"
	}
	return strings.Join(out, ", ")
}

// syncWeights makes every rank start from rank 0's weights.
func (t *Trainer) syncWeights() error {
	if t.group == nil {
		return nil
	}
	var all []*ts.Tensor
	for _, p := range t.Model.Store.All() {
		all = append(all, p.Tensor)
	}
	var err error
	noGrad(func() { err = t.group.Broadcast(all, 0) })
	return err
}

// reduceGrads sums the gradients over the ranks (each rank's loss is
// already its share of the global mean, see optimizerStep) and, in the same
// round of collectives, the numbers in sums: the step's loss parts and the
// stop flags, so all ranks take the same decisions without a second round
// trip. Every rank has the same set of defined gradients: the same model ran
// the same graph.
func (t *Trainer) reduceGrads(sums []float64) error {
	if t.group == nil {
		return nil
	}
	params := make([]*ts.Tensor, len(t.params))
	for i, p := range t.params {
		params[i] = p.Tensor
	}
	return t.group.ReduceGrads(params, sums)
}

// agree sums xs over the ranks (validation sums). All ranks call it at the
// same points.
func (t *Trainer) agree(xs ...float64) ([]float64, error) {
	if t.group == nil {
		return xs, nil
	}
	x := ts.MustOfSlice(xs)
	defer x.MustDrop()
	if err := t.group.AllReduceSum(x); err != nil {
		return nil, err
	}
	return x.Float64Values(false), nil
}

// rankPlan deals each global micro-batch out rank-strided.
func rankPlan(global [][]int, rank, world int) [][]int {
	if world == 1 {
		return global
	}
	out := make([][]int, len(global))
	for i, g := range global {
		for j := rank; j < len(g); j += world {
			out[i] = append(out[i], g[j])
		}
	}
	return out
}

// stepTokens is the number of caption tokens of each optimizer step of a
// global plan, over all ranks: the loss denominator. Every rank knows the
// whole plan, so this needs no communication.
func (d *Dataset) stepTokens(global [][]int, accum int) []int {
	out := make([]int, len(global)/accum)
	for i, b := range global[:len(out)*accum] {
		for _, r := range b {
			out[i/accum] += len(d.Tokens[r])
		}
	}
	return out
}

// worldChange adapts a checkpoint's position in its epoch to another world
// size: the same number of samples consumed, rounded down to a whole
// optimizer step of the new world (at most one step's samples repeat).
func (t *Trainer) worldChange(old int) {
	if old == 0 {
		old = 1
	}
	if old == t.world() {
		return
	}
	samples := t.st.Batch * t.st.Config.BS * old
	per := t.Cfg.BS * t.world() * t.Cfg.GradAccum
	t.st.Batch = samples / per * t.Cfg.GradAccum
	fmt.Fprintf(t.Log, "note: checkpoint was written by %d ranks, resuming on %d: epoch %d continues at sample %d of its shuffle (of %d consumed)\n",
		old, t.world(), t.st.Epoch+1, t.st.Batch*t.Cfg.BS*t.world(), samples)
}

// releaseJob leaves the job.
func (t *Trainer) releaseJob() {
	if t.group != nil {
		t.group.Close()
		t.group = nil
		t.overlap = false
	}
}
