#!/usr/bin/env bash
# scripts/abuse.sh — tries the built binary the way an adversarial user would, on loopback only,
# with a bounded number of requests and a timeout on every step, and prints one row per case:
#   input | outcome | time | peak RSS
# serve cases: decompression bombs (a ~1 MB 16-bit PNG and a ~400-byte truncated JPEG, both declaring
# 13000x13000), bodies trickled at 1 byte/s or stalled, oversize beams, a client that leaves during
# generation, DNS-rebinding Host headers, a missing API key; file cases: a malicious pickle given as
# CLIP weights, two `extract` runs on one --out. The model is the demo's (tiny GPT-2, random CLIP),
# built here in a temporary directory in under a minute.
# Targets: no crash, serve's peak RSS under 1.5 GB for the bomb and slow-body cases, every refusal
# under 2 s. Exit status 1 when a case crashed or missed a target.
# Env: ABUSE_PORT (default 18089), ABUSE_KEEP=1 keeps the work directory. Needs curl and python3.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B="$root/bin/clipcap"
[ -x "$B" ] || { echo "abuse: build first (scripts/setup.sh)" >&2; exit 2; }
W=$(mktemp -d /tmp/clipcap-abuse.XXXXXX)
PORT=${ABUSE_PORT:-18089}
URL="http://127.0.0.1:$PORT"
KEY=abuse-test-key
SERVE_PID=
cleanup() {
  [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
  [ "${ABUSE_KEEP:-}" = 1 ] && echo "abuse: work directory kept: $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
failed=0
rows=()
row() { rows+=("$(printf '%-46s | %-44s | %7s | %8s' "$1" "$2" "$3" "$4")"); }
miss() { failed=1; }

# --- helpers (Python, standard library only) ------------------------------------------------
cat >"$W/abuse.py" <<'EOF'
import socket, struct, sys, time, zlib, zipfile, resource, subprocess, os

def chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data) & 0xffffffff)

def bomb_png(path, w, h):
    # 16-bit RGBA, all zero: deflate shrinks the declared 1.35 GB to about 1 MB.
    z = zlib.compressobj(9)
    row = b"\0" * (1 + 8 * w)
    body = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
                + chunk(b"IDAT", body) + chunk(b"IEND", b""))

def bomb_jpeg(src, path, w, h):
    # A real JPEG's frame header rewritten to declare w x h, cut 20 bytes into the scan.
    d = bytearray(open(src, "rb").read())
    sof, sos = d.find(b"\xff\xc0"), d.find(b"\xff\xda")
    struct.pack_into(">HH", d, sof + 5, h, w)
    open(path, "wb").write(bytes(d[:sos + 20]))

def evil_pt(path):
    # MARK followed by TUPLE2: the unpickler must reject it, not crash.
    bad = b"\x80\x02K\x01K\x02(\x86t."
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", bad)
        z.writestr("archive/constants.pkl", bad)
        z.writestr("archive/version", "3\n")

def slow(port, rate, key, total=100000):
    # Declares `total` bytes, then sends `rate` bytes a second (0: none); prints status and seconds.
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.05)
    s.sendall(("POST /v1/captions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % (key, total)).encode())
    t0, resp = time.time(), b""
    while time.time() - t0 < 60 and b"\r\n" not in resp:
        try:
            data = s.recv(4096)
            if not data:
                break
            resp += data
        except socket.timeout:
            if rate and int((time.time() - t0) * rate) > 0:
                try: s.sendall(b"\0")
                except OSError: pass
                time.sleep(1.0 / rate)
    code = resp.split(b" ")[1].decode() if resp.startswith(b"HTTP/") else "no answer"
    print(code, "%.2f" % (time.time() - t0))

def run(timeout, *cmd):
    # Runs cmd; prints exit status, seconds, peak RSS (MB), and the last stderr line.
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        rc, err = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", (e.stderr or b"").decode(errors="replace")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    crash = "panic:" in err or "fatal error:" in err or "SIGSEGV" in err
    lines = err.strip().splitlines() or [""]
    last = next((l for l in lines if "panic:" in l or "fatal error:" in l), lines[-1]) if crash else lines[-1]
    last = last[:70].replace("|", "/")
    print("%s\t%.2f\t%d\t%s\t%s" % (rc, time.time() - t0, rss, "CRASH" if crash else "ok", last))

f = sys.argv[1]
if f == "bomb_png": bomb_png(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif f == "bomb_jpeg": bomb_jpeg(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
elif f == "evil_pt": evil_pt(sys.argv[2])
elif f == "slow": slow(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
elif f == "run": run(float(sys.argv[2]), *sys.argv[3:])
EOF
py() { python3 "$W/abuse.py" "$@"; }

# --- the demo model ---------------------------------------------------------------------------
echo "abuse: building a demo model in $W" >&2
T="timeout 300"
$T "$B" demo-data --out "$W/data" --train 24 --val 4 --test 4 --size 48 --random-clip "$W/clip.safetensors" >/dev/null 2>&1 &&
$T "$B" extract --dataset jsonl --input "$W/data/demo.jsonl" --clip "$W/clip.safetensors" --out "$W/store" >/dev/null 2>&1 &&
$T "$B" train --config "$root/configs/demo_mlp.yaml" --set data="$W/store" --set out_dir="$W/runs" --set prefix=m \
  --set epochs=0 --set progress=false >"$W/train.log" 2>&1 || { echo "abuse: could not build the demo model" >&2; cat "$W/train.log" >&2; exit 2; }
MODEL="$W/runs/m/checkpoints/$(cat "$W/runs/m/latest")"
IMG=$(ls "$W"/data/images/*.png | head -n 1)
py bomb_png "$W/bomb16.png" 13000 13000
py bomb_jpeg "$root/data/imageproc/testdata/in/gray_200x150.jpg" "$W/bomb.jpg" 13000 13000
py evil_pt "$W/evil.pt"

# --- serve --------------------------------------------------------------------------------------
"$B" serve --model "$MODEL" --clip "$W/clip.safetensors" --addr "127.0.0.1:$PORT" --api-key "$KEY" --timeout 5s 2>"$W/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do curl -fs "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "$URL/healthz" >/dev/null || { echo "abuse: serve did not start" >&2; cat "$W/serve.log" >&2; exit 2; }
rss_reset() { echo 5 >"/proc/$SERVE_PID/clear_refs" 2>/dev/null || true; }
rss_peak() { awk '/VmHWM/ {printf "%d MB", $2/1024}' "/proc/$SERVE_PID/status" 2>/dev/null || echo "dead"; }
rss_mb() { awk '/VmHWM/ {print int($2/1024)}' "/proc/$SERVE_PID/status" 2>/dev/null || echo 99999; }
alive() { kill -0 "$SERVE_PID" 2>/dev/null; }

# post N QUERY FILE [extra curl args]: N requests in parallel; prints "COUNTxCODE ..." and the
# slowest time. AUTH overrides the API key header.
post() {
  local n=$1 q=$2 file=$3; shift 3
  local i; for i in $(seq "$n"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 60 -H "${AUTH:-Authorization: Bearer $KEY}" \
      -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$@" "$URL/v1/captions$q" &
  done | sort | awk '{c[$1]++; if ($2 > t) t = $2} END {for (k in c) printf "%sx%s ", c[k], k; printf "\t%.2f\n", t}'
}

# serve_case NAME WANT_CODE BOUNDED(1: RSS and 2 s targets) COMMAND...
serve_case() {
  local name=$1 want=$2 bounded=$3; shift 3
  rss_reset
  local out codes secs
  out=$("$@")
  codes=${out%%$'\t'*} secs=${out##*$'\t'}
  local outcome="$codes"
  if ! alive; then outcome="CRASH (serve died)"; miss
  elif [ -z "$codes" ] || [ "$(printf '%s\n' $codes | grep -vc "x$want\$")" != 0 ]; then
    outcome="$codes(want $want)"; miss
  fi
  if [ "$bounded" = 1 ]; then
    [ "$(rss_mb)" -lt 1536 ] || { outcome="$outcome RSS>1.5GB"; miss; }
    awk -v s="$secs" 'BEGIN {exit !(s < 2)}' || { outcome="$outcome slow"; miss; }
  fi
  row "serve: $name" "$outcome" "${secs}s" "$(rss_peak)"
}
slow_case() { local r; r=$(py slow "$PORT" "$1" "$KEY"); printf '%sx%s \t%s\n' 1 "${r% *}" "${r#* }"; }

serve_case "16-bit PNG 13000x13000 ($(( $(stat -c %s "$W/bomb16.png") / 1024 )) KB)" 413 1 post 1 "" "$W/bomb16.png"
serve_case "same, 4 in parallel" 413 1 post 4 "" "$W/bomb16.png"
serve_case "cut JPEG 13000x13000 ($(stat -c %s "$W/bomb.jpg") B), 4 parallel" 413 1 post 4 "" "$W/bomb.jpg"
serve_case "body trickled at 1 byte/s" 408 1 slow_case 1
serve_case "body stalled (headers only)" 408 1 slow_case 0
serve_case "beam=16&max_tokens=124" 400 1 post 1 "?strategy=beam&beam=16&max_tokens=124" "$IMG"
serve_case "Host: evil.example (DNS rebinding)" 403 1 post 1 "" "$IMG" -H "Host: evil.example:$PORT"
AUTH="Authorization: Bearer wrong" serve_case "wrong API key" 401 1 post 1 "" "$IMG"
# A client that leaves during a long beam search: the server's CPU time in the next 2 s.
cpu() { awk '{print $14 + $15}' "/proc/$SERVE_PID/stat"; }
curl -s -o /dev/null --max-time 0.3 -H "Authorization: Bearer $KEY" --data-binary "@$IMG" \
  "$URL/v1/captions?strategy=beam&beam=8&max_tokens=67" 2>/dev/null
c0=$(cpu); sleep 2; c1=$(cpu)
tick=$(getconf CLK_TCK)
row "serve: client leaves beam-8 request at 0.3 s" "CPU after it left: $(awk -v a="$c0" -v b="$c1" -v t="$tick" 'BEGIN {printf "%.2f s in 2 s", (b-a)/t}')" "-" "$(rss_peak)"
serve_case "a normal image afterwards" 200 0 post 4 "" "$IMG"

# --- files --------------------------------------------------------------------------------------
file_case() { # NAME WANT(ok|fail) COMMAND...
  local name=$1 want=$2; shift 2
  local r rc secs rss crash last
  r=$(py run 120 "$@")
  IFS=$'\t' read -r rc secs rss crash last <<<"$r"
  local outcome="exit $rc: $last"
  if [ "$crash" != ok ] || [ "$rc" = timeout ]; then outcome="CRASH/HANG ($rc): $last"; miss
  elif [ "$want" = fail ] && [ "$rc" = 0 ]; then outcome="accepted (want refusal)"; miss
  fi
  row "$name" "${outcome:0:44}" "${secs}s" "${rss} MB"
}
file_case "caption --clip: pickle MARK, TUPLE2" fail "$B" caption --model "$MODEL" --clip "$W/evil.pt" --image "$IMG"

# Two extract runs on one --out at once, then a third: the store must stay usable.
"$B" extract --dataset jsonl --input "$W/data/demo.jsonl" --clip "$W/clip.safetensors" --out "$W/store2" --shard-size 4 >"$W/x1.log" 2>&1 &
x1=$!
"$B" extract --dataset jsonl --input "$W/data/demo.jsonl" --clip "$W/clip.safetensors" --out "$W/store2" --shard-size 4 >"$W/x2.log" 2>&1
x2=$?
wait "$x1"; x1=$?
crashed=$(grep -l "panic:\|fatal error:" "$W"/x[12].log 2>/dev/null | wc -l)
r=$(py run 120 "$B" extract --dataset jsonl --input "$W/data/demo.jsonl" --clip "$W/clip.safetensors" --out "$W/store2" --shard-size 4)
IFS=$'\t' read -r rc secs rss crash last <<<"$r"
outcome="runs: exit $x1, $x2; then: exit $rc"
# One of the two must have been refused (the store's lock) and the other finished; the third
# then finds a complete store, which extract reports ("already complete") rather than redoing.
complete=no
if [ "$rc" != 0 ]; then
  again=$("$B" extract --dataset jsonl --input "$W/data/demo.jsonl" --clip "$W/clip.safetensors" --out "$W/store2" --shard-size 4 2>&1 || true)
  [[ "$again" != *"already complete"* ]] || complete=yes
fi
if [ "$crashed" != 0 ] || [ $((x1 + x2)) != 1 ] || { [ "$rc" != 0 ] && [ "$complete" != yes ]; }; then
  outcome="$outcome (store broken)"; miss
elif [ "$rc" != 0 ]; then outcome="$outcome (complete)"; fi
row "2 extract runs on one --out, then a 3rd" "$outcome" "${secs}s" "${rss} MB"

alive || { row "serve" "CRASH: died during the file cases" "-" "-"; miss; }
printf '\n%-46s | %-44s | %7s | %8s\n' input outcome time "peak RSS"
printf '%s\n' "$(printf '%.0s-' $(seq 115))"
printf '%s\n' "${rows[@]}"
if grep -q "panic:\|fatal error:" "$W/serve.log"; then echo "abuse: serve logged a panic:" >&2; grep -m3 "panic:\|fatal error:" "$W/serve.log" >&2; failed=1; fi
[ "$failed" = 0 ] && echo "abuse: all targets met" || echo "abuse: some cases missed their target (see above)"
exit "$failed"
