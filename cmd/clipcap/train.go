package main

import (
	"fmt"

	"github.com/clipcap/clipcap/train"
)

const trainSummary = "train a ClipCap model over a feature store; checkpoints into out_dir/prefix, resumable"

func init() {
	register(command{name: "train", summary: trainSummary, run: runTrain})
}

func runTrain(args []string) error {
	fs := newFlags("train", "--config F.yaml [--set key=value]... [--resume [RUN_DIR]]", trainSummary)
	config := fs.String("config", "", "training config (YAML; presets in configs/)")
	var sets stringList
	fs.Var(&sets, "set", "override a config key, key=value (repeatable)")
	verify := fs.Bool("verify", false, "hash every feature store shard against its manifest (verify_data=true)")
	fs.Bool("resume", false, "continue the run in RUN_DIR (default: the config's out_dir/prefix, started when it has no checkpoint yet) from its latest checkpoint")
	nproc := fs.Int("nproc-per-node", 0, "data-parallel: start N workers on this machine (loopback rendezvous, cores/N threads each)")
	rest, resume, dir := train.SplitResume(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if *nproc < 0 {
		return usagef("--nproc-per-node: must be at least 1, got %d", *nproc)
	}
	if *nproc > 0 {
		return train.LaunchLocal(*nproc, args)
	}
	opts, log, err := train.JobFromEnv()
	if err != nil {
		return err
	}
	if *verify {
		sets = append(sets, "verify_data=true")
	}
	ctx, stop := signalContext()
	defer stop()
	if !resume && *config == "" {
		return usagef("--config is required (presets in configs/)")
	}
	dir, err = train.Start(ctx, train.Job{Config: *config, Sets: sets, Resume: resume, RunDir: dir}, log, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "done: model dir %s\n", dir)
	return nil
}
