#!/usr/bin/env bash
# scripts/test.sh — the project's test command: sets up what is missing (scripts/setup.sh is
# idempotent and quiet when everything is in place), then vet, format check and the test suite.
# Extra arguments go to `go test` (e.g. scripts/test.sh -run TestX ./model/...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
echo "test: go vet ./..." >&2
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './third_party/*'))
if [ -n "$unformatted" ]; then
  echo "test: gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
if [ $# -eq 0 ]; then set -- ./...; fi
echo "test: go test $*" >&2
go test -count=1 -timeout 30m "$@"
# Full runs repeat the packages that start goroutines under the race detector
# (about a minute on 2 cores).
if [ "$*" = "./..." ]; then
  echo "test: go test -race (serve, live, extract, train, data/download, data/datasets, data/featstore)" >&2
  go test -race -count=1 -timeout 20m ./serve/... ./live/... ./extract/... ./train/... ./data/download/... ./data/datasets/... ./data/featstore/...
fi
if [ "$*" = ./... ] && [ "${FUZZTIME:-15s}" != 0 ]; then scripts/fuzz.sh; fi  # whole suite only; FUZZTIME=0 skips
