#!/usr/bin/env bash
# scripts/fuzz.sh — runs every native Go fuzz target for a bounded time
# (FUZZTIME per target, default 15s; 6 targets, so about 2 minutes with
# compilation). A failure leaves the crashing input under
# <package>/testdata/fuzz/<FuzzName>/; commit it as a regression case (plain
# `go test` replays it). Extra arguments restrict the targets by name, e.g.
# scripts/fuzz.sh FuzzPickle. scripts/test.sh runs it after the whole suite (FUZZTIME=0 skips).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZTIME=${FUZZTIME:-15s}
targets=(
  ./internal/tensorfile:FuzzPickle
  ./internal/tensorfile:FuzzTorchFile
  ./internal/tensorfile:FuzzSafetensors
  ./internal/tensorfile:FuzzNpy
  ./data/imageproc:FuzzDecode
  ./eval/metrics:FuzzTokenize
)
for t in "${targets[@]}"; do
  pkg=${t%%:*} name=${t##*:}
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  echo "fuzz: $name ($pkg) for $FUZZTIME" >&2
  # -run matches nothing so only the fuzz target runs; -parallel 2 keeps a
  # shared machine usable.
  go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -parallel "${FUZZPARALLEL:-2}" "$pkg"
done
