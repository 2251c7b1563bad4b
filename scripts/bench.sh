#!/usr/bin/env bash
# scripts/bench.sh — every benchmark of the project, each with its baseline measured in the same run
# on this machine, then one table of figures and ratios. Run it on an idle machine; it takes
# roughly 15–25 minutes on 2 cores (most of it in the PyTorch baselines).
#   scripts/bench.sh                 # everything
#   ONLY="blas generate" scripts/bench.sh
# Sections: blas generate precision realtime train dist extract score serve (realtime: live and
# serve frame -> caption per inference precision; dist: data-parallel scaling,
# all-reduce vs loopback TCP). Baselines need Debian's python3-torch,
# python3-pil and python3-numpy (scripts/bench.sh installs them when missing); the scoring
# baseline needs a pycocoevalcap checkout in PYCOCOEVALCAP_DIR (skipped otherwise).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
for p in python3-torch python3-pil python3-numpy python3-torchvision; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="${need:-} $p"
done
if [ -n "${need:-}" ]; then
  echo "bench: installing the PyTorch baselines' packages:$need" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >/dev/null
fi
# The PyTorch baselines get the runtime settings clipcap's commands use (internal/torchrt): without a
# passive OpenMP wait policy PyTorch 1.13's decoding runs several times slower on 2 cores.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# The training baseline also gets one intra-op thread per physical core, as clipcap's trainer takes
# (torchrt.ComputeOnAllCores): libtorch's own count (cpuinfo's) can be short on virtual machines (1 of
# 2 cores here), in PyTorch too. Inference keeps libtorch's default on both sides.
cores=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[ "$cores" -gt 0 ] || cores=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ONLY=${ONLY:-blas generate precision realtime train dist extract score serve}
want() { [[ " $ONLY " == *" $1 "* ]]; }
rows=()
row() { rows+=("$(printf '%-44s %14s %14s %8s' "$1" "$2" "$3" "$4")"); }
# metric FILE BENCH UNIT: the value reported before UNIT on the benchmark's line.
metric() { awk -v b="$2" -v u="$3" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == u) { print $i; exit } }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
gobench() { # name pkg pattern benchtime
  echo "== $1: go test -bench $3 $2" >&2
  go test -run '^$' -bench "$3" -benchtime "$4" -timeout 60m "$2" | tee "$work/$1.txt" >&2
}

if want blas; then
  gobench blas ./internal/torchrt/ 'BenchmarkMatmul1024$' 1x
  g=$(metric "$work/blas.txt" BenchmarkMatmul1024 GFLOP/s); p=$(metric "$work/blas.txt" BenchmarkMatmul1024 pytorch-GFLOP/s)
  row "1024² float32 matmul, GFLOP/s" "$g" "$p" "$(ratio "$g" "$p")"
fi

if want generate; then
  (cd model/generate && go test -run '^$' -bench 'GenerateVsPredictPy' -benchtime 1x -timeout 60m .) | tee "$work/gen.txt" >&2
  B=BenchmarkGenerateVsPredictPy; f=$work/gen.txt
  gs=$(metric $f $B greedy-s/img); gx=$(metric $f $B greedy-speedup)
  bs=$(metric $f $B beam5-s/img); bx=$(metric $f $B beam5-speedup)
  ts=$(metric $f $B batch32-img/s); tx=$(metric $f $B batch32-speedup)
  row "caption, greedy 20 tok, s/image" "$gs" "$(awk -v s="$gs" -v x="$gx" 'BEGIN{printf "%.3f", s*x}')" "${gx}x"
  row "caption, beam 5, 20 tok, s/image" "$bs" "$(awk -v s="$bs" -v x="$bx" 'BEGIN{printf "%.3f", s*x}')" "${bx}x"
  row "caption, greedy batch 32, images/s" "$ts" "$(awk -v s="$ts" -v x="$tx" 'BEGIN{printf "%.3f", s/x}')" "${tx}x"
  row "batch-1 ms/token vs memory floor" "$(metric $f $B ms/token)" "$(metric $f $B floor-ms/token)" "$(metric $f $B x-floor)x"
  row "generation peak RSS, MB" "$(metric $f $B peak-rss-MB)" "$(metric $f $B pytorch-peak-rss-MB)" "$(ratio "$(metric $f $B peak-rss-MB)" "$(metric $f $B pytorch-peak-rss-MB)")"
fi

if want train; then
  gobench train ./train/ 'BenchmarkTrainStep' 3x
  for kind in mlp transformer; do
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores} /usr/bin/python3 train/testdata/bench_train.py bench $kind 3 | tee "$work/train-$kind.json" >&2
  done
  for kind in mlp transformer; do
    ours=$(awk -v k="$kind" '$1 ~ "BenchmarkTrainStep/"k"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "samples/s") { print $i; exit } }' "$work/train.txt")
    py=$(sed -n 's/.*"samples_per_s": *\([0-9.eE+-]*\).*/\1/p' "$work/train-$kind.json" | tail -n 1)
    py=$(awk -v v="$py" 'BEGIN { if (v != "") printf "%.2f", v }')
    row "train $kind, batch 40, samples/s" "$ours" "$py" "$(ratio "$ours" "$py")"
  done
  # precision: bf16 (bfloat16 matrix products, fp32 masters) against fp32, same run.
  for kind in mlp transformer; do
    sps() { awk -v k="$1" '$1 ~ "BenchmarkTrainStep/"k"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "samples/s") { print $i; exit } }' "$work/train.txt"; }
    bf=$(sps "$kind-bf16"); fp=$(sps "$kind")
    row "train $kind bf16 vs fp32, samples/s" "$bf" "$fp" "$(ratio "$bf" "$fp")"
  done
  gobench trainmem ./train/ 'BenchmarkLongRunMemory' 1x
  row "train 2000 steps, RSS growth MB" "$(metric "$work/trainmem.txt" BenchmarkLongRunMemory MB-growth)" "-" "-"
fi

if want dist; then
  gobench dist ./train/ 'BenchmarkDataParallel$' 1x
  f=$work/dist.txt; B=BenchmarkDataParallel
  row "train 2 workers x 1 thread vs 1 x 1, samples/s" "$(metric $f $B 2x1-samples/s)" "$(metric $f $B 1x1-samples/s)" "$(metric $f $B speedup)x"
  row "  the same at batch 8 a worker, samples/s" "$(metric $f $B 2x1-samples/s-bs8)" "$(metric $f $B 1x1-samples/s-bs8)" "$(metric $f $B speedup-bs8)x"
  # PyTorch's own DDP on the same model, batch, threads and pinning: what the engine reaches here.
  OMP_NUM_THREADS=1 /usr/bin/python3 train/testdata/bench_ddp.py 40 | tee "$work/ddp.json" >&2
  ddp() { sed -n 's/.*"'"$1"'": *\([0-9.eE+-]*\).*/\1/p' "$work/ddp.json" | tail -n 1 | awk '{ printf "%.2f", $1 }'; }
  row "  PyTorch DDP: 2 x 1 thread vs 1 x 1, samples/s" "$(ddp two_workers)" "$(ddp one_worker)" "$(ddp speedup)x"
  ours2=$(metric $f $B 2x1-samples/s)
  row "train 2 workers x 1 thread vs PyTorch DDP" "$ours2" "$(ddp two_workers)" "$(ratio "$ours2" "$(ddp two_workers)")"
  gobench allreduce ./internal/dist/ 'BenchmarkAllReduceGPT2Small$' 3x
  f=$work/allreduce.txt; B=BenchmarkAllReduceGPT2Small
  row "all-reduce GPT-2 small grads (498 MB), GB/s" "$(metric $f $B GB/s)" "$(metric $f $B tcp-GB/s)" "$(metric $f $B x-tcp)x"
fi

if want extract; then
  gobench extract ./extract/ 'BenchmarkExtractViTB32' 1x
  ours=$(metric "$work/extract.txt" BenchmarkExtractViTB32 images/s)
  /usr/bin/python3 extract/testdata/bench_pil_torch.py | tee "$work/extract-py.txt" >&2
  py=$(sed -n 's/.*pipeline \([0-9.]*\) images\/s.*/\1/p' "$work/extract-py.txt" | tail -n 1)
  row "extract ViT-B/32 640x480 JPEG, images/s" "$ours" "$py" "$(ratio "$ours" "$py")"
fi

if want score; then
  PYCOCOEVALCAP_DIR=${PYCOCOEVALCAP_DIR:-} scripts/bench_score.sh | tee "$work/score.txt" >&2
  go_s=$(sed -n 's/^Go best (tokenization included): \([0-9.]*\) s/\1/p' "$work/score.txt")
  py_s=$(sed -n 's/^pycocoevalcap best of 3: \([0-9.]*\) s.*/\1/p' "$work/score.txt" | tail -n 1)
  row "score 5k images / 25k refs, seconds" "$go_s" "${py_s:--}" "$(ratio "${py_s:-}" "$go_s")"
fi

if want precision; then
  gobench precision ./model/generate/ 'BenchmarkPrecisionDecode$' 1x
  f=$work/precision.txt; B=BenchmarkPrecisionDecode
  for p in bf16 int8; do
    row "batch-1 ms/token, $p vs fp32" "$(metric $f $B $p-ms/token)" "$(metric $f $B fp32-ms/token)" "$(metric $f $B $p-speedup)x"
  done
  for p in fp32 bf16 int8; do
    row "batch-1 ms/token, $p vs its memory floor" "$(metric $f $B $p-ms/token)" "$(metric $f $B $p-floor-ms/token)" "$(metric $f $B $p-x-floor)x"
  done
  for p in bf16 int8; do
    row "greedy batch 32 captions/s, $p vs fp32" "$(metric $f $B $p-batch32-img/s)" "$(metric $f $B fp32-batch32-img/s)" "$(ratio "$(metric $f $B $p-batch32-img/s)" "$(metric $f $B fp32-batch32-img/s)")"
  done
  gobench clipprec ./model/clip/ 'BenchmarkCLIPEncodePrecision$' 1x
  f=$work/clipprec.txt; B=BenchmarkCLIPEncodePrecision
  row "ViT-B/32 1-image encode ms, bf16 vs fp32" "$(metric $f $B bf16-ms/image)" "$(metric $f $B fp32-ms/image)" "$(metric $f $B bf16-speedup)x"
fi

if want realtime; then
  # Frame -> caption with ViT-B/32 + GPT-2 small, 20-token greedy captions: `live` on a 640x480
  # video (default mode; int8 with --overlap too) and `serve` one request at a time, per precision,
  # fp32 the baseline.
  gobench live ./live/ 'BenchmarkLiveOverlap' 1x
  gobench servep ./serve/ 'BenchmarkServePrecision' 8x
  lv() { awk -v p="$1" -v o="${3:-false}" '$1 ~ "BenchmarkLiveOverlap/"p"/overlap="o { for (i = 2; i < NF; i++) if ($(i+1) == "'"$2"'") { print $i; exit } }' "$work/live.txt"; }
  sv() { awk -v p="$1" '$1 ~ "BenchmarkServePrecision/"p"(-[0-9]+)?$" { for (i = 2; i < NF; i++) if ($(i+1) == "'"$2"'") { print $i; exit } }' "$work/servep.txt"; }
  for p in bf16 int8; do
    [ -n "$(lv $p captions/s)" ] && row "live $p vs fp32, captions/s (p50 ms $(lv $p p50-ms))" "$(lv $p captions/s)" "$(lv fp32 captions/s)" "$(ratio "$(lv $p captions/s)" "$(lv fp32 captions/s)")"
    row "serve $p vs fp32, captions/s (p50 ms $(sv $p p50-ms))" "$(sv $p captions/s)" "$(sv fp32 captions/s)" "$(ratio "$(sv $p captions/s)" "$(sv fp32 captions/s)")"
  done
  row "live int8 --overlap vs fp32, captions/s (p50 ms $(lv int8 p50-ms true))" "$(lv int8 captions/s true)" "$(lv fp32 captions/s)" "$(ratio "$(lv int8 captions/s true)" "$(lv fp32 captions/s)")"
fi

if want serve; then
  LOAD_SECONDS=${LOAD_SECONDS:-30} BENCHTIME=${BENCHTIME:-2x} scripts/bench_serve.sh | tee "$work/serve.txt" >&2
  for path in greedy beam5; do
    c=$(awk -v p="$path" '$1 ~ "BenchmarkFrameToCaption/"p"/cached" { for (i = 2; i < NF; i++) if ($(i+1) == "p50-ms") { print $i; exit } }' "$work/serve.txt")
    o=$(awk -v p="$path" '$1 ~ "BenchmarkFrameToCaption/"p"/predictpy" { for (i = 2; i < NF; i++) if ($(i+1) == "p50-ms") { print $i; exit } }' "$work/serve.txt")
    row "frame→caption p50 ms, $path (vs no cache)" "$c" "$o" "$(ratio "$o" "$c")"
  done
  sp=$(sed -n 's/.*batching speed-up: \([0-9.]*\)x.*/\1/p' "$work/serve.txt" | tail -n 1)
  row "serve: dynamic batching vs max-batch 1" "${sp:+${sp}x}" "1.00x" "${sp:+${sp}x}"
fi

printf '\n%-44s %14s %14s %8s\n' "benchmark (this machine, same run)" "clipcap" "baseline" "ratio"
printf '%s\n' "${rows[@]}"
echo "baselines: PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null) re-creations of the original code (see each benchmark); ratio = speed-up (or value ratio for RSS)."
