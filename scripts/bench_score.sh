#!/usr/bin/env bash
# Benchmark clipcap's caption metrics against pycocoevalcap on the same files.
#
# Both sides score BLEU-1..4 + ROUGE-L + CIDEr-D on a generated corpus of
# 5,000 images with 5 references each (25,000 references). Our time includes
# our PTB tokenization of all 30,000 captions (BenchmarkScore5000, what
# `clipcap score` does); pycocoevalcap's excludes its Java tokenizer (the
# captions are lowercase words without punctuation, which PTB tokenization
# leaves unchanged, so it scores the same tokens without it). The
# tokenizer's own figures (plain and adversarial captions, and the one-pass
# lexer it replaced) are printed too.
#
#   PYCOCOEVALCAP_DIR=/path/to/pycocoevalcap scripts/bench_score.sh
#
# PYCOCOEVALCAP_DIR is a checkout of github.com/salaniz/pycocoevalcap (the
# directory holding bleu/, rouge/, cider/). PYTHON defaults to /usr/bin/python3
# (needs numpy). Without PYCOCOEVALCAP_DIR only the Go side runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== writing the benchmark corpus to $work"
BENCH_SCORE_DIR=$work go test -count=1 -run '^TestWriteBenchFiles$' ./eval/metrics/ >/dev/null

echo "== Go: PTB tokenizer alone (ns/caption)"
go test -run '^$' -bench '^BenchmarkTokenize' -benchtime 3x ./eval/metrics/ | grep Benchmark

echo "== Go: go test -bench BenchmarkScore5000 (PTB tokenization + BLEU + ROUGE-L + CIDEr-D)"
go_out=$(go test -run '^$' -bench '^BenchmarkScore5000$' -benchtime 5x -count 3 ./eval/metrics/)
echo "$go_out" | grep Benchmark
go_ns=$(echo "$go_out" | awk '/^BenchmarkScore5000/ {print $3}' | sort -n | head -1)
echo "Go best (tokenization included): $(awk -v ns="$go_ns" 'BEGIN {printf "%.3f s", ns/1e9}')"

if [[ -z "${PYCOCOEVALCAP_DIR:-}" || ! -d "${PYCOCOEVALCAP_DIR}/cider" ]]; then
  echo "== pycocoevalcap: skipped (set PYCOCOEVALCAP_DIR to a pycocoevalcap checkout)"
  exit 0
fi
# The checkout's directory is the package; import it under its own name.
mkdir -p "$work/py"
ln -s "$(cd "$PYCOCOEVALCAP_DIR" && pwd)" "$work/py/pycocoevalcap"

echo "== pycocoevalcap: Bleu(4) + Rouge + Cider compute_score on the same files"
PYTHONPATH="$work/py" "$PYTHON" - "$work" "$go_ns" <<'PY'
import json, sys, time
from collections import OrderedDict
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
work, go_ns = sys.argv[1], float(sys.argv[2])
ann = json.load(open(work + "/annotations.json"))
res = json.load(open(work + "/results.json"))
gts = OrderedDict((im["id"], []) for im in ann["images"])
for a in ann["annotations"]:
    gts[a["image_id"]].append(a["caption"])
cand = {r["image_id"]: [r["caption"]] for r in res}
res = OrderedDict((k, cand[k]) for k in gts)
best, scores = None, {}
for _ in range(3):
    t = time.perf_counter()
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    r, _ = Rouge().compute_score(gts, res)
    c, _ = Cider().compute_score(gts, res)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
    scores = {"Bleu_1": b[0], "Bleu_2": b[1], "Bleu_3": b[2], "Bleu_4": b[3], "ROUGE_L": float(r), "CIDEr": float(c)}
go = json.load(open(work + "/go_scores.json"))
worst = max(abs(go[k] - v) for k, v in scores.items())
print("pycocoevalcap best of 3: %.3f s" % best)
print("max |Go - pycocoevalcap| over corpus scores: %.3g" % worst)
print("speedup (ours with tokenization, theirs without): %.1fx" % (best / (go_ns / 1e9)))
PY
