#!/usr/bin/env bash
# Load test and benchmarks of `clipcap live` / `clipcap serve` on this machine.
#   scripts/bench_serve.sh            # 60 s load test + real-size benchmarks
#   LOAD_SECONDS=20 BENCHTIME=2x scripts/bench_serve.sh
# The load test: 32 clients on loopback against a small random model, with
# dynamic batching and with max-batch 1; it fails on failed requests,
# goroutine/memory growth, or a batching speed-up under 1.5x.
# The benchmarks: ViT-B/32 + GPT-2 small with random weights, 20-token
# captions, greedy and beam 5, KV cache vs predict.py's no-cache decoding,
# and batched HTTP serving with 8 clients.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLIPCAP_LOADTEST=1 CLIPCAP_LOADTEST_SECONDS="${LOAD_SECONDS:-60}"
go test -count=1 -run '^TestLoad$' -v -timeout 30m ./serve/
go test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-3x}" -timeout 60m ./serve/
