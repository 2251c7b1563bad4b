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
	var f train.Flags
	f.RegisterFlags(fs)
	rest, resume, dir := train.SplitResume(args)
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if f.NProcPerNode < 0 {
		return usagef("--nproc-per-node: must be at least 1, got %d", f.NProcPerNode)
	}
	if f.NProcPerNode > 0 {
		return train.LaunchLocal(f.NProcPerNode, args)
	}
	opts, log, err := train.JobFromEnv()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	if !resume && f.Config == "" {
		return usagef("--config is required (presets in configs/)")
	}
	f.Resume, f.RunDir = resume, dir
	dir, err = train.Start(ctx, f.Parsed(), log, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "done: model dir %s\n", dir)
	return nil
}
