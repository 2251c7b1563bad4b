#!/usr/bin/env python3
"""Generate pycocoevalcap parity data for eval/metrics.

Run with a Python that has numpy, with pycocoevalcap importable (a checkout of
github.com/salaniz/pycocoevalcap in a directory named pycocoevalcap on
PYTHONPATH) and its tokenizer/stanford-corenlp-3.4.1.jar in place:

    PYTHONPATH=/path/to/parent /usr/bin/python3 gen_parity.py

The committed outputs were made with a stanford-corenlp-3.4.1.jar compiled
from CoreNLP's v3.4.1 tag (javac --release 8, PTBTokenizer and what it needs),
because the mirrored pycocoevalcap checkout lacked the jar blob; it is the
same tokenizer source the released jar was built from.

It writes, next to this script:
  parity_<case>_annotations.json / parity_<case>_results.json  COCO-format inputs
  parity_<case>_expected.json   the toolkit's tokens, corpus and per-image scores
  tokenizer_cases.json          raw captions and the toolkit's tokenization
The evaluation follows COCOEvalCap.evaluate (images in "images" order, refs
and results tokenized in two PTBTokenizer calls, then Bleu(4), Rouge, Cider).
"""
import json, os, random, sys

from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider

HERE = os.path.dirname(os.path.abspath(__file__))

SUBJ = ["a man", "a woman", "two dogs", "the cat", "a group of people", "a young boy", "an old lady",
        "a baseball player", "three zebras", "a red fire hydrant", "a plate of food", "a giraffe",
        "children", "a surfer", "a skateboarder", "an elephant", "the train", "a bus", "two men"]
VERB = ["is standing", "are sitting", "is riding", "is eating", "walks", "are playing", "holds",
        "is flying", "sits", "is parked", "lies", "is looking at", "jumps over", "is cutting"]
OBJ = ["a kite", "a surfboard", "the beach", "a pizza", "a field", "the street", "a table",
       "a frisbee", "the snow", "a laptop", "a bench", "the water", "a horse", "a cake", "the grass"]
PREP = ["on", "in", "near", "next to", "in front of", "under", "beside", "behind", "with"]
ADJ = ["large", "small", "red", "white", "black-and-white", "wooden", "old", "green", "busy", "empty"]
DECOR = ["dog's", "kids'", "can't", "won't", "it's", "(with a hat)", "\"happy\"", "'old'", "--", "...",
         "3.5", "1,000", "$5", "½", "U.S.", "Mr. Smith", "e-mail", "T-shirt", "café", "naïve", "日本",
         "😀", "&amp;", "A&W", "c++", ":)", "1/2", "10:30", "St.", "etc.", "‘quoted’", "“smart”", "—", "–",
         "No. 5", "i.e.", "x-ray", "well-known", "o'clock", "  ", "\t", "\u00a0", "!", "?", ";", ":"]


def sentence(rng):
    words = [rng.choice(SUBJ), rng.choice(VERB)]
    if rng.random() < 0.8:
        words += [rng.choice(PREP), rng.choice(["a", "the"]), rng.choice(ADJ), rng.choice(OBJ).split()[-1]]
    if rng.random() < 0.4:
        words += [rng.choice(PREP), rng.choice(OBJ)]
    s = " ".join(words)
    if rng.random() < 0.35:
        toks = s.split(" ")
        for _ in range(rng.randint(1, 3)):
            toks.insert(rng.randint(0, len(toks)), rng.choice(DECOR))
        s = " ".join(toks)
    r = rng.random()
    if r < 0.4:
        s = s[0].upper() + s[1:] + "."
    elif r < 0.5:
        s = s.upper()
    elif r < 0.55:
        s = "  " + s + " ! "
    return s


def candidate(rng, refs):
    r = rng.random()
    if r < 0.10:
        return rng.choice(refs)                       # identical to a reference
    if r < 0.15:
        return "zzz qqq xyzzy plugh"                  # disjoint
    if r < 0.18:
        return rng.choice(["", "   ", ".", "!!!", "(", "--"])  # empty after tokenization
    if r < 0.25:
        w = rng.choice(["a", "dog", "the", "man"])
        return " ".join([w] * rng.randint(1, 12))     # repeated words
    if r < 0.30:
        return (rng.choice(refs).split() or ["dog"])[0]  # one word
    if r < 0.35:
        return " ".join(sentence(rng) for _ in range(3))  # long
    return sentence(rng)


def evaluate(img_ids, refs, cands):
    gts = {i: [{"caption": c} for c in refs[i]] for i in img_ids}
    res = {i: [{"caption": cands[i]}] for i in img_ids}
    tok = PTBTokenizer()
    gts = tok.tokenize(gts)
    res = tok.tokenize(res)
    corpus, per = {}, {i: {} for i in img_ids}
    for scorer, names in [(Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (Rouge(), "ROUGE_L"), (Cider(), "CIDEr")]:
        if isinstance(scorer, Bleu):
            score, scores = scorer.compute_score(gts, res, verbose=0)
        else:
            score, scores = scorer.compute_score(gts, res)
        if isinstance(names, list):
            for sc, scs, m in zip(score, scores, names):
                corpus[m] = float(sc)
                for i, v in zip(gts.keys(), scs):
                    per[i][m] = float(v)
        else:
            corpus[names] = float(score)
            for i, v in zip(gts.keys(), scores):
                per[i][names] = float(v)
    return {
        "image_ids": list(img_ids),
        "tokenized_refs": [gts[i] for i in img_ids],
        "tokenized_cands": [res[i][0] for i in img_ids],
        "corpus": corpus,
        "per_image": [dict(image_id=i, **per[i]) for i in img_ids],
    }


def write_case(name, img_ids, refs, cands, ann_extra=None):
    anns = []
    for i in img_ids:
        for c in refs[i]:
            anns.append({"image_id": i, "id": len(anns), "caption": c})
    ann = {"images": [{"id": i} for i in img_ids], "annotations": anns}
    res = [{"image_id": i, "caption": cands[i]} for i in img_ids]
    for suffix, obj in [("annotations", ann), ("results", res), ("expected", evaluate(img_ids, refs, cands))]:
        with open(os.path.join(HERE, "parity_%s_%s.json" % (name, suffix)), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False)


def main():
    rng = random.Random(20240611)
    # Case "main": 400 images, 5 references each, integer ids in shuffled order.
    ids = rng.sample(range(1, 1000000), 400)
    refs = {i: [sentence(rng) for _ in range(5)] for i in ids}
    cands = {i: candidate(rng, refs[i]) for i in ids}
    write_case("main", ids, refs, cands)
    # Case "varied": string ids, 1..7 references, heavier tokenizer content.
    ids = ["img-%03d" % k for k in range(120)]
    refs, cands = {}, {}
    for i in ids:
        refs[i] = [sentence(rng) for _ in range(rng.randint(1, 7))]
        if rng.random() < 0.1:
            refs[i].append("")  # an empty reference caption
        cands[i] = candidate(rng, refs[i])
    write_case("varied", ids, refs, cands)

    # Tokenizer cases: edge captions, written out one per image.
    frags = json.load(open(os.path.join(HERE, "tokenizer_fragments.json"), encoding="utf-8"))
    lines = list(frags["fixed"])
    spaces = [" ", " ", " ", "  ", "\t", " \u00a0", "\u2002", ""]
    for _ in range(3000):
        k = rng.randint(0, 8) if rng.random() < 0.7 else rng.randint(0, 2)
        s = "".join(rng.choice(frags["pieces"]) + rng.choice(spaces) for _ in range(k))
        if rng.random() < 0.3:
            s = s.strip()
        if rng.random() < 0.15:
            s = s.upper()
        lines.append(s)
    tok = PTBTokenizer().tokenize({k: [{"caption": c}] for k, c in enumerate(lines)})
    with open(os.path.join(HERE, "tokenizer_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"captions": lines, "tokenized": [tok[k][0] for k in range(len(lines))]}, f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
