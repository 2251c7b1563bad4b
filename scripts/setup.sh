#!/usr/bin/env bash
# scripts/setup.sh — everything clipcap needs on a Debian 12 machine, idempotent and quiet when
# there is nothing to do:
#   1. system packages with apt (only the missing ones): Debian's CPU libtorch + OpenBLAS, unless
#      LIBTORCH points at another libtorch (an official archive or a PyTorch install's torch/ dir);
#   2. a copy of gotch v0.9.1 prepared for that libtorch (cgo flags, C++ ABI, wrappers the libtorch
#      cannot compile stubbed), cached per libtorch and wired in through go.mod's replace of
#      ./third_party/gotch (a git-ignored symlink);
#   3. GPT-2's BPE files into the tokenizer cache (scripts/fetch-tokenizer.sh);
#   4. the clipcap binary at ./bin/clipcap (with internal/dist's c10d shim, whose compiler flags
#      for a LIBTORCH other than Debian's go into internal/dist/zz_libtorch_flags.go).
# Env: LIBTORCH=/path, CLIPCAP_CACHE=/dir (default ~/.cache/clipcap), SETUP_SKIP_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
GOTCH_VERSION=v0.9.1
cache=${CLIPCAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipcap}

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

command -v go >/dev/null || die "Go is not installed; install Go 1.26.8 or newer, the version go.mod names (https://go.dev/dl), and re-run."

# --- 1. system packages --------------------------------------------------------------------
pkgs=(g++ libjpeg62-turbo-dev ffmpeg)
if [ -z "${LIBTORCH:-}" ]; then
  # libgloo-dev: Gloo's headers, which c10d's ProcessGroupGloo.hpp includes; libtorch-dev lacks them.
  pkgs+=(libtorch-dev libopenblas0-pthread libgloo-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand, or set LIBTORCH=/path/to/libtorch."
  [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}"
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed; check the machine's Debian package sources."
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed."
fi

# --- 2. which libtorch ---------------------------------------------------------------------
if [ -n "${LIBTORCH:-}" ]; then
  lt=$(cd "$LIBTORCH" 2>/dev/null && pwd) || die "LIBTORCH=$LIBTORCH does not exist; point it at an unpacked libtorch or a PyTorch install's torch/ directory."
  [ -f "$lt/lib/libtorch.so" ] || die "LIBTORCH=$lt has no lib/libtorch.so; point it at an unpacked libtorch or a PyTorch install's torch/ directory."
  api_inc="$lt/include/torch/csrc/api/include"
  [ -d "$api_inc" ] || die "LIBTORCH=$lt has no include/torch/csrc/api/include (headers missing)."
  [ -d "$lt/include/gloo" ] || [ -d /usr/include/gloo ] || die "LIBTORCH=$lt has no include/gloo (Gloo headers, for data-parallel training); apt-get install libgloo-dev, or point it at a libtorch that ships them."
  incs="-I$lt/include -I$api_inc"
  libdir="$lt/lib"
  if nm -DC --defined-only "$libdir/libc10.so" 2>/dev/null | grep -q 'std::__cxx11::basic_string'; then abi=1; else abi=0; fi
  ldflags="-L$libdir -Wl,-rpath,$libdir -ltorch -ltorch_cpu -lc10 -lstdc++"
  cuda=no
  if [ -f "$libdir/libtorch_cuda.so" ]; then
    cuda=yes
    # --no-as-needed: nothing references libtorch_cuda's symbols directly, yet loading it is what
    # registers the CUDA kernels.
    ldflags="$ldflags -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed"
  fi
else
  lt=/usr
  api_inc=/usr/include/torch/csrc/api/include
  [ -d "$api_inc" ] || die "libtorch-dev is installed but $api_inc is missing; reinstall libtorch-dev."
  incs="-I$api_inc"
  abi=1   # Debian builds libtorch with the C++11 ABI
  ldflags="-ltorch -ltorch_cpu -lc10 -lstdc++"
  cuda=no
fi
vh="$api_inc/torch/version.h"
[ -f "$vh" ] || die "libtorch headers lack torch/version.h under $api_inc."
tver=$(awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/{printf "%s%s", sep, $3; sep="."}' "$vh")
cxxflags="$incs -D_GLIBCXX_USE_CXX11_ABI=$abi"
cflags="-D_GLIBCXX_USE_CXX11_ABI=$abi"

# --- 3. gotch prepared for it ----------------------------------------------------------------
key=$(printf '%s\n' "$GOTCH_VERSION" "$tver" "$lt" "$abi" "$cuda" "$cxxflags" "$ldflags" | cat - scripts/gotchprep/main.go | sha256sum | cut -c1-16)
prepared="$cache/gotch/$GOTCH_VERSION-torch$tver-$key"
if [ ! -f "$prepared/STUBBED.txt" ]; then
  say "preparing gotch $GOTCH_VERSION for libtorch $tver ($lt, C++11 ABI=$abi, CUDA=$cuda)"
  tmpmod=$(mktemp -d)
  trap 'rm -rf "$tmpmod"' EXIT
  src=$(cd "$tmpmod" && go mod init tmp >/dev/null 2>&1 && go mod download -json "github.com/sugarme/gotch@$GOTCH_VERSION" | awk -F'"' '/"Dir":/{print $4}')
  [ -n "$src" ] && [ -d "$src" ] || die "could not download github.com/sugarme/gotch@$GOTCH_VERSION through the Go module proxy."
  mkdir -p "$cache/gotch"
  # Run the preparer from the temporary module: the project's own go.mod points at the
  # third_party/gotch that does not exist yet.
  cp scripts/gotchprep/main.go "$tmpmod/"
  (cd "$tmpmod" && go run . -src "$src" -dst "$prepared" \
      -cflags "$cflags" -cxxflags "$cxxflags" -ldflags "$ldflags") || die "preparing gotch failed (see above)."
fi
mkdir -p third_party
if [ "$(readlink third_party/gotch 2>/dev/null)" != "$prepared" ]; then
  ln -sfn "$prepared" third_party/gotch
fi
# What doctor reports and what the CUDA/CPU build was made for.
printf 'libtorch=%s\nversion=%s\ncxx11_abi=%s\ncuda=%s\ngotch=%s\n' "$lt" "$tver" "$abi" "$cuda" "$prepared" > third_party/gotch.env.tmp
mv third_party/gotch.env.tmp third_party/gotch.env

# The c10d shim (internal/dist) builds against Debian's libtorch with its committed flags; another
# libtorch gets its include dirs, ABI and libraries here, and NCCL when it has CUDA and nccl.h.
distflags=internal/dist/zz_libtorch_flags.go
if [ -n "${LIBTORCH:-}" ]; then
  dcxx="$cxxflags"
  if [ "$cuda" = yes ]; then
    cudainc=${CUDA_HOME:-/usr/local/cuda}/include
    for d in "$lt/include" /usr/include "$cudainc"; do
      if [ -f "$d/nccl.h" ]; then
        dcxx="$dcxx -DUSE_C10D_NCCL -DCLIPCAP_NCCL -I$cudainc"
        [ "$d" = "$lt/include" ] || [ "$d" = /usr/include ] || dcxx="$dcxx -I$d"
        break
      fi
    done
    case "$dcxx" in *CLIPCAP_NCCL*) ;; *) say "no nccl.h found: data-parallel training on CUDA will need dist_backend: gloo";; esac
  fi
  printf '// Code generated by scripts/setup.sh for LIBTORCH=%s. DO NOT EDIT.\n\npackage dist\n\n// #cgo CXXFLAGS: %s\n// #cgo LDFLAGS: %s\nimport "C"\n' \
    "$lt" "$dcxx" "$ldflags" > "$distflags"
else
  rm -f "$distflags"
fi

# --- 4. tokenizer files ----------------------------------------------------------------------
if [ -x scripts/fetch-tokenizer.sh ]; then
  scripts/fetch-tokenizer.sh
fi

# --- 5. the binary -------------------------------------------------------------------------
if [ -z "${SETUP_SKIP_BUILD:-}" ]; then
  pkg=github.com/clipcap/clipcap/internal/doctor
  facts="version=$tver,libtorch=$lt,cxx11_abi=$abi,cuda=$cuda"
  # The source revision goes into the binary for `clipcap version`, when git can read
  # this checkout (Go refuses to build with -buildvcs=auto when git fails here).
  vcs=false
  if git status --porcelain >/dev/null 2>&1; then vcs=auto; fi
  if ! go build -buildvcs=$vcs -ldflags "-X $pkg.BuildLibtorch=$facts -X $pkg.BuildGotch=$prepared" -o bin/clipcap ./cmd/clipcap 2>"$cache/build.log"; then
    cat "$cache/build.log" >&2
    die "go build ./cmd/clipcap failed (log above)."
  fi
fi
