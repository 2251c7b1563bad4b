"""reference.py — an independent implementation of OpenAI's GPT-2 encoder
algorithm (gpt-2/src/encoder.py: the `regex` module's pattern, byte to unicode
table, lowest-rank-first merges applied to every occurrence), used to
  1. check expected.json (made by gen_expected.js with npm gpt-3-encoder);
  2. write python_only.json: cases where JavaScript's regex classes differ
     from Python's, with the ids of the Python (OpenAI) encoder;
  3. write pieces.json: the regex pieces of every case (pre-tokenization);
  4. write the toy fixture toy/{vocab.json,merges.txt} (GPT-2's byte tokens,
     its first TOY_MERGES merges, then <|endoftext|>) and toy_expected.json,
     the ids the toy vocab gives for cases.json.

Two references are kept because they can disagree: the JS port keys merge
ranks by pair.join(','), which collides for pairs of comma tokens, and JS's
\\s differs from Python regex's \\s on U+0085 and U+FEFF. cases.json avoids
strings where such a difference would matter; this script proves it.

Usage: /usr/bin/python3 reference.py VOCAB_DIR   (needs python3-regex;
VOCAB_DIR holds GPT-2's vocab.json and merges.txt, see fetch-tokenizer.sh).
Exits 1 and lists the cases on any mismatch of step 1.
"""
import json
import os
import sys

import regex

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_table():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe(word, ranks):
    parts = list(word)
    while len(parts) > 1:
        pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(parts):
            if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts


TOY_MERGES = 60

# Strings whose pieces differ between JS \s (includes U+FEFF, not U+0085) and
# Python regex \s (White_Space: U+0085 yes, U+FEFF no).
PYTHON_ONLY = [
    "x  \u0085y",
    "a \ufeffb",
    "tail \u0085\u0085",
    "a \x1cb \x1f",
    "line\u2028sep  \u2029para",
    "nel\u0085\u0085word \ufeff\ufeff",
]


def load(vocab_dir):
    with open(os.path.join(vocab_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(vocab_dir, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:-1]
    return vocab, lines


def encoder(vocab, lines):
    ranks = {tuple(l.split()): i for i, l in enumerate(lines)}
    table = byte_table()

    def encode(text):
        ids = []
        for piece in PAT.findall(text):
            mapped = "".join(table[b] for b in piece.encode("utf-8"))
            ids.extend(vocab[t] for t in bpe(mapped, ranks))
        return ids

    return encode


def write_cases(path, encode, texts):
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(" " + json.dumps({"text": t, "ids": encode(t)}) for t in texts) + "\n]\n")


def main():
    vocab_dir = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    vocab, lines = load(vocab_dir)
    encode = encoder(vocab, lines)

    with open(os.path.join(here, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    bad = 0
    for case in expected:
        ids = encode(case["text"])
        if ids != case["ids"]:
            bad += 1
            print("MISMATCH", json.dumps(case["text"]), "js", case["ids"], "py", ids)
    print(f"{len(expected) - bad}/{len(expected)} cases of expected.json agree")

    write_cases(os.path.join(here, "python_only.json"), encode, PYTHON_ONLY)
    texts = [c["text"] for c in expected] + PYTHON_ONLY
    with open(os.path.join(here, "pieces.json"), "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(" " + json.dumps({"text": t, "pieces": PAT.findall(t)}) for t in texts) + "\n]\n")

    # Toy vocab: GPT-2's ids 0..255+TOY_MERGES are the bytes and its first
    # merges, so the toy vocab is a prefix of GPT-2's plus <|endoftext|>.
    inv = {i: t for t, i in vocab.items()}
    toy_vocab = {inv[i]: i for i in range(256 + TOY_MERGES)}
    assert all(a + b in toy_vocab for a, b in (l.split() for l in lines[:TOY_MERGES]))
    toy_vocab["<|endoftext|>"] = len(toy_vocab)
    toy_dir = os.path.join(here, "toy")
    os.makedirs(toy_dir, exist_ok=True)
    with open(os.path.join(toy_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(toy_vocab, f, ensure_ascii=False)
    with open(os.path.join(toy_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(lines[:TOY_MERGES]) + "\n")
    toy_encode = encoder(toy_vocab, lines[:TOY_MERGES])
    write_cases(os.path.join(here, "toy_expected.json"), toy_encode, [c["text"] for c in expected])
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
