#!/usr/bin/python3
"""Generates the fixtures for model/weights tests. Run from this directory
with Debian's /usr/bin/python3 (torch 1.13, numpy 1.24):

    /usr/bin/python3 gen.py

Writes tiny torch.save files (zip and legacy), a TorchScript archive, .npy
files, a safetensors file written by an independent Python implementation
of the spec, float16/bfloat16 conversion tables, and expected.json with
every tensor's dtype, shape and exact bytes (hex, C order).
"""
import collections
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
np.random.seed(0)

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
      torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
      torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def raw(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def describe(t):
    return {"dtype": DT[t.dtype], "shape": list(t.shape), "hex": raw(t).hex()}


def state_dict():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3)
    sd["f16"] = torch.randn(5).half()
    sd["bf16"] = torch.randn(2, 2).to(torch.bfloat16)
    sd["f64"] = torch.randn(3, dtype=torch.float64)
    sd["i64"] = torch.tensor([1, -2, 1 << 40], dtype=torch.int64)
    sd["i32"] = torch.tensor([[7, -8]], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 255, 3], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["param"] = nn.Parameter(torch.randn(4))
    # Views sharing one storage: a transpose (non-contiguous), a row slice
    # (storage offset), a strided column and the base itself.
    sd["base"] = base
    sd["base_t"] = base.t()
    sd["base_rows"] = base[1:]
    sd["base_col"] = base[:, 2]
    sd["layer.0.weight"] = torch.randn(3, 2)
    return sd


def write_expected(path, sd, extra=None):
    exp = {"order": list(sd.keys()), "tensors": {k: describe(v) for k, v in sd.items()}}
    if extra:
        exp.update(extra)
    return exp


expected = {}

sd = state_dict()
torch.save(sd, "sd_zip.pt")
torch.save(sd, "sd_legacy.pt", _use_new_zipfile_serialization=False)
expected["sd_zip.pt"] = write_expected("sd_zip.pt", sd)
expected["sd_legacy.pt"] = expected["sd_zip.pt"]

# A training-style checkpoint: nested dicts, a list, and scalar values.
inner = collections.OrderedDict([("clip_project.model.0.weight", torch.randn(4, 2)),
                                 ("clip_project.model.0.bias", torch.randn(4))])
ckpt = {"state_dict": inner, "epoch": 3, "lr": 0.5, "name": "mlp", "flag": True,
        "hist": [torch.ones(2), torch.zeros(1)]}
torch.save(ckpt, "nested.pt")
flat = collections.OrderedDict()
for k, v in inner.items():
    flat["state_dict." + k] = v
flat["hist.0"] = ckpt["hist"][0]
flat["hist.1"] = ckpt["hist"][1]
expected["nested.pt"] = write_expected("nested.pt", flat, {
    "values": {"epoch": 3, "lr": 0.5, "name": "mlp", "flag": True}})

# A whole pickled module: its class is not on the allow-list.
torch.save(nn.Linear(2, 2), "module.pt")


# TorchScript: a tiny CLIP-shaped model, partly fp16 like CLIP's releases.
class Block(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.attn = nn.MultiheadAttention(w, 2)
        self.ln_1 = nn.LayerNorm(w)
        self.mlp = nn.Sequential(collections.OrderedDict([
            ("c_fc", nn.Linear(w, 2 * w)), ("c_proj", nn.Linear(2 * w, w))]))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(x)


class Visual(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, 2, stride=2, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(w))
        self.transformer = nn.Sequential(Block(w), Block(w))
        self.proj = nn.Parameter(torch.randn(w, 4))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(2, 0, 1)
        return self.transformer(x)[0] @ self.proj


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = Visual(8)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.register_buffer("attn_mask", torch.full((3, 3), float("-inf")).triu(1))

    def forward(self, x):
        return self.visual(x) * self.logit_scale.exp()


m = Tiny().eval()
m.visual.conv1.half()
for blk in m.visual.transformer:
    blk.attn.half()
    blk.mlp.c_fc.half()
scripted = torch.jit.script(m)
torch.jit.save(scripted, "script.pt")
loaded = torch.jit.load("script.pt")
jsd = collections.OrderedDict(loaded.state_dict())
expected["script.pt"] = write_expected("script.pt", jsd)

# Independent safetensors writer following the published format: u64 header
# length, compact JSON with __metadata__ first, tensors ordered by element
# size (largest first) then name, header padded with spaces to 8 bytes.
st = collections.OrderedDict([
    ("b.f32", torch.randn(2, 3)), ("a.f16", torch.randn(3).half()),
    ("c.bf16", torch.randn(4).to(torch.bfloat16)), ("d.i64", torch.tensor([5, -6])),
    ("e.u8", torch.tensor([1, 2, 3], dtype=torch.uint8)), ("f.bool", torch.tensor([True])),
    ("g.f64", torch.tensor([[1.5]], dtype=torch.float64)), ("h.scalar", torch.tensor(3.0)),
    ("i.i32", torch.tensor([9], dtype=torch.int32)), ("j.empty", torch.zeros(0, 2))])
meta = {"format": "pt", "source": "gen.py"}
size = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "U8": 1, "BOOL": 1}
names = sorted(st, key=lambda n: (-size[DT[st[n].dtype]], n))
hdr = collections.OrderedDict([("__metadata__", dict(sorted(meta.items())))])
off = 0
blobs = []
for n in names:
    b = raw(st[n])
    hdr[n] = collections.OrderedDict([("dtype", DT[st[n].dtype]), ("shape", list(st[n].shape)),
                                      ("data_offsets", [off, off + len(b)])])
    off += len(b)
    blobs.append(b)
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("ref.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
expected["ref.safetensors"] = write_expected("ref.safetensors", st, {"metadata": meta})

# .npy fixtures from numpy itself.
npys = {
    "f4.npy": np.random.randn(2, 3).astype("<f4"),
    "f2.npy": np.random.randn(4).astype("<f2"),
    "f8.npy": np.random.randn(2, 1, 2).astype("<f8"),
    "i8.npy": np.array([1, -2, 3 << 40], dtype="<i8"),
    "i4.npy": np.array([[1, 2], [3, -4]], dtype="<i4"),
    "u1.npy": np.array([0, 200, 255], dtype="|u1"),
    "scalar.npy": np.array(1.25, dtype="<f4"),
    "empty.npy": np.zeros((0, 3), dtype="<f4"),
}
for name, arr in npys.items():
    np.save(name, arr)
    expected[name] = {"dtype": {"<f4": "F32", "<f2": "F16", "<f8": "F64", "<i8": "I64", "<i4": "I32", "|u1": "U8"}[arr.dtype.str],
                      "shape": list(arr.shape), "hex": np.ascontiguousarray(arr).tobytes().hex()}
np.save("fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
with open("v2.npy", "wb") as f:
    arr = np.arange(5, dtype="<f4")
    np.lib.format.write_array(f, arr, version=(2, 0))
    expected["v2.npy"] = {"dtype": "F32", "shape": [5], "hex": arr.tobytes().hex()}
np.save("big_endian.npy", np.arange(3, dtype=">f4"))

# Conversion tables: every half value widened by numpy, and float32 values
# (edge cases + random) narrowed to float16 by numpy and to bfloat16 by torch.
halves = np.arange(65536, dtype=np.uint32).astype(np.uint16)
np.save("f16_to_f32.npy", halves.view(np.float16).astype(np.float32))
edge = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65520.0, 65519.99, 1e-8, 2.0 ** -24, 2.0 ** -25,
                 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -14 * 0.999, 1.00048828125, 1.0009765625,
                 1.00146484375, np.inf, -np.inf, 1e10, 3.14159265, 2.0 ** -25 * 1.0001,
                 0.333333343, 1.5 * 2.0 ** -24], dtype=np.float32)
rnd = np.concatenate([np.random.randn(3000).astype(np.float32) * s for s in (1e-6, 1e-3, 1, 1e3)])
bits = np.random.randint(0, 2 ** 32, size=4000, dtype=np.uint64).astype(np.uint32).view(np.float32)
f32 = np.concatenate([edge, rnd, bits[np.isfinite(bits)]]).astype(np.float32)
np.save("f32_values.npy", f32)
np.save("f32_to_f16.npy", f32.astype(np.float16))
bf = torch.from_numpy(f32.copy()).to(torch.bfloat16).view(torch.int16).numpy()
np.save("f32_to_bf16.npy", bf.view(np.uint16).astype(np.int32))  # stored widened: npy has no bf16

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print("wrote fixtures:", ", ".join(sorted(expected)))
