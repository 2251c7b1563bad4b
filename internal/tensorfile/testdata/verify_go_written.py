#!/usr/bin/python3
"""Loads go_written.pt (written by the Go torch writer, see
pickle_write_test.go) with torch.load, checks load_state_dict accepts it,
and records what torch saw in go_written_torch.json."""
import collections
import json

import torch

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
      torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
      torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}

sd = torch.load("go_written.pt")
assert isinstance(sd, collections.OrderedDict), type(sd)


def raw(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


# The official ClipCap code does model.load_state_dict(torch.load(path)).
lin = torch.nn.Linear(3, 4)
lin.load_state_dict({"weight": sd["clip_project.model.0.weight"], "bias": sd["clip_project.model.0.bias"]})

out = {"type": type(sd).__name__, "torch": torch.__version__, "order": list(sd.keys()),
       "tensors": {k: {"dtype": DT[v.dtype], "shape": list(v.shape), "hex": raw(v).hex()} for k, v in sd.items()}}
with open("go_written_torch.json", "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
print("torch.load read", len(sd), "tensors")
