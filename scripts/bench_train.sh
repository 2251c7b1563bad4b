#!/bin/sh
# Training throughput: our trainer vs a PyTorch re-creation of the original
# train.py (GPT-2 small, random weights, batch 40, COCO-like caption lengths),
# then the long-run memory check. Both use 2 threads; run on an idle machine.
set -e
cd "$(dirname "$0")/.."
STEPS=${STEPS:-3}
echo "== clipcap (Go/libtorch)"
go test ./train/ -run '^$' -bench 'BenchmarkTrainStep' -benchtime=${STEPS}x -timeout 60m
echo "== PyTorch, original train.py semantics"
/usr/bin/python3 train/testdata/bench_train.py bench mlp "$STEPS"
/usr/bin/python3 train/testdata/bench_train.py bench transformer "$STEPS"
echo "== memory: 2000 steps of a small model"
go test ./train/ -run '^$' -bench 'BenchmarkLongRunMemory' -benchtime=1x -timeout 30m
