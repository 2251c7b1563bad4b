#!/usr/bin/env bash
# scripts/demo.sh — the main job end to end on the embedded demo data:
#   set-up → synthetic captioning set (coloured shapes; counts, colours, shapes, positions) →
#   extract CLIP embeddings → train both variants (MLP + GPT-2 tuning, transformer mapper) →
#   evaluate on the held-out split against an untrained model → caption test images, video and HTTP.
# Env: DEMO_DIR (default runs/demo), DEMO_EPOCHS (default 3), DEMO_TRAIN (training images, 1500).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$(date +%s)
scripts/setup.sh
B="$root/bin/clipcap"
D=${DEMO_DIR:-runs/demo}
EPOCHS=${DEMO_EPOCHS:-3}
step() { printf '\n== %s (%ds)\n' "$*" $(( $(date +%s) - start )); }

rm -rf "$D"
mkdir -p "$D"
step "clipcap doctor"
"$B" doctor

"$B" download --list >/dev/null
"$B" tokenize "A man riding a horse."

step "demo data"
"$B" demo-data --out "$D/data" --train "${DEMO_TRAIN:-1500}" --val 150 --test 150 --random-clip "$D/clip-random.safetensors"

cache=${CLIPCAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipcap}
pretrained=$(ls "$cache"/models/ViT-B-32/*.pt 2>/dev/null | head -n 1 || true)
if [ -n "$pretrained" ]; then
  CLIP=$pretrained
  echo "CLIP encoder: pretrained OpenAI ViT-B/32 from the cache ($CLIP)"
else
  CLIP="$D/clip-random.safetensors"
  echo "CLIP encoder: no pretrained CLIP weights in $cache/models (clipcap download ViT-B/32 fetches them),"
  echo "so this demo uses a seeded RANDOM CLIP-architecture ResNet with a standardized last layer."
  echo "Its embeddings are random image features, not CLIP's; the captioner still has to learn from them."
fi

step "extract"
"$B" extract --dataset jsonl --input "$D/data/demo.jsonl" --clip "$CLIP" --out "$D/store"

train() { # config prefix [--set ...]
  local cfg=$1 name=$2; shift 2
  "$B" train --config "configs/$cfg.yaml" --set data="$D/store" --set out_dir="$D/runs" --set prefix="$name" \
    --set epochs="$EPOCHS" --set save_every="$EPOCHS" --set progress=false "$@" >"$D/$name.train.log" 2>&1 \
    || { cat "$D/$name.train.log"; exit 1; }
  grep -E '^epoch .* sample' "$D/$name.train.log" | tail -n 2 >&2
  echo "$D/runs/$name/checkpoints/$(cat "$D/runs/$name/latest")"
}
step "train: untrained baseline (epochs 0 saves the initialized model)"
untrained=$(train demo_mlp untrained --set epochs=0)
step "train: MLP mapper + GPT-2 fine-tuning"
mlp=$(train demo_mlp mlp)
step "train: transformer mapper"
transformer=$(train demo_transformer transformer)
"$B" plot --run "$D/runs/mlp" --out "$D/mlp_loss.svg"
"$B" plot --run "$D/runs/transformer" --out "$D/transformer_loss.svg"

step "evaluate on the held-out test split"
for name in untrained mlp transformer; do
  model=${!name}
  "$B" eval --model "$model" --features "$D/store" --split test --out "$D/eval/$name" >"$D/eval-$name.log" 2>&1 \
    || { cat "$D/eval-$name.log"; exit 1; }
done
metric() { sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$D/eval/$1/metrics.json"; }
printf '\n%-12s %8s %8s %8s %8s\n' model BLEU-1 BLEU-4 ROUGE-L CIDEr
for name in untrained mlp transformer; do
  printf '%-12s %8.4f %8.4f %8.4f %8.4f\n' "$name" "$(metric $name Bleu_1)" "$(metric $name Bleu_4)" "$(metric $name ROUGE_L)" "$(metric $name CIDEr)"
done
# The same numbers again through the stand-alone scorer, from the files eval wrote.
"$B" score --results "$D/eval/mlp/results.json" --annotations "$D/eval/mlp/references.json" --json >"$D/eval/mlp/score.json"

step "caption held-out images"
mapfile -t imgs < <(sed -n 's/.*"image":"\(images\/test_[0-9]*\.png\)".*/\1/p' "$D/data/demo.jsonl" | head -n 4)
for img in "${imgs[@]}"; do
  ref=$(grep -F "\"$img\"" "$D/data/demo.jsonl" | sed 's/.*"captions":\["\([^"]*\)".*/\1/')
  got=$("$B" caption --model "$mlp" --clip "$CLIP" --image "$D/data/$img")
  printf '%s\n   model:     %s\n   reference: %s\n' "$img" "$got" "$ref"
done
"$B" embed --clip "$CLIP" --image "$D/data/${imgs[0]}" --image "$D/data/${imgs[1]}" --out "$D/emb.npy"
"$B" caption --model "$transformer" --embedding "$D/emb.npy" --strategy greedy --json
"$B" caption --model "$mlp" --clip "$CLIP" --image "$D/data/${imgs[0]}" --image "$D/data/${imgs[1]}" --strategy sample --temperature 0.8 --top-p 0.9 --seed 1 --json

step "export, import back, caption again"
"$B" export --model "$mlp" --format official --out "$D/mlp_official.pt"
"$B" export --model "$mlp" --format safetensors --out "$D/mlp.safetensors"
"$B" export --model "$mlp" --format gpt2-config --out "$D/gpt2_config.json"
"$B" import --from official --checkpoint "$D/mlp_official.pt" --gpt2-config "$D/gpt2_config.json" --clip "$CLIP" --out "$D/imported"
"$B" caption --model "$D/imported" --image "$D/data/${imgs[0]}"

step "live captioning of a video, and the HTTP API"
mkdir -p "$D/frames"
n=0
for img in $(sed -n 's/.*"image":"\(images\/test_[0-9]*\.png\)".*/\1/p' "$D/data/demo.jsonl" | head -n 10); do
  cp "$D/data/$img" "$D/frames/$(printf %03d $n).png"; n=$((n + 1))
done
ffmpeg -loglevel error -y -framerate 1 -i "$D/frames/%03d.png" -c:v libx264 -pix_fmt yuv420p "$D/test.mp4"
"$B" live --model "$mlp" --clip "$CLIP" --source "$D/test.mp4" --every 1s --confirm 1 --subtitles "$D/test.vtt" --output "$D/test_captioned.mp4" --no-window >"$D/live.log" 2>&1 \
  || { cat "$D/live.log"; exit 1; }
head -n 8 "$D/test.vtt"
port=$(( 20000 + RANDOM % 20000 ))
"$B" serve --model "$mlp" --clip "$CLIP" --addr "127.0.0.1:$port" >"$D/serve.log" 2>&1 &
spid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -X POST --data-binary "@$D/data/${imgs[2]}" "http://127.0.0.1:$port/v1/captions"; echo
kill -TERM "$spid"; wait "$spid" || true

step "result"
b4=$(metric mlp Bleu_4); c=$(metric mlp CIDEr); c0=$(metric untrained CIDEr)
t4=$(metric transformer Bleu_4)
echo "held-out BLEU-4: MLP $b4, transformer $t4 (bound: 0.5); CIDEr: MLP $c vs untrained $c0 (bound: 10x)"
learned=$(awk -v b="$b4" -v t="$t4" -v c="$c" -v c0="$c0" 'BEGIN { print (b >= 0.5 && t >= 0.5 && c >= 10 * c0 && c > 0) ? "yes" : "no" }')
cat <<EOF
learned: $learned
run dirs:     $D/runs/mlp, $D/runs/transformer (metrics.jsonl, checkpoints/)
loss plots:   $D/mlp_loss.svg, $D/transformer_loss.svg
eval reports: $D/eval/mlp/report.md, $D/eval/transformer/report.md
subtitles:    $D/test.vtt (video with captions: $D/test_captioned.mp4)
total time:   $(( $(date +%s) - start ))s
EOF
[ "$learned" = yes ]
