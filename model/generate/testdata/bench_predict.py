#!/usr/bin/python3
"""The original predict.py's decoding re-created in PyTorch, for benchmarks.

GPT-2 small sized, random weights; every step re-runs GPT-2 over the whole
sequence (no KV cache) and one image is captioned at a time, as predict.py
does (generate2 for "greedy" with its top-p 0.8 filter, generate_beam with
beam 5). Stop token disabled, a fixed number of tokens.
Prints one JSON line: seconds per image for each mode and peak RSS.
Usage: bench_predict.py TOKENS IMAGES_FOR_BATCHED_MODE
"""
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
TOKENS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 32
E, L, H, V, P, PREFIX = 768, 12, 12, 50257, 1024, 10

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(E), nn.LayerNorm(E)
        self.c_attn_w, self.c_attn_b = nn.Parameter(torch.randn(E, 3 * E) * 0.02), nn.Parameter(torch.zeros(3 * E))
        self.c_proj_w, self.c_proj_b = nn.Parameter(torch.randn(E, E) * 0.02), nn.Parameter(torch.zeros(E))
        self.fc_w, self.fc_b = nn.Parameter(torch.randn(E, 4 * E) * 0.02), nn.Parameter(torch.zeros(4 * E))
        self.mp_w, self.mp_b = nn.Parameter(torch.randn(4 * E, E) * 0.02), nn.Parameter(torch.zeros(E))
    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = torch.addmm(self.c_attn_b, self.ln_1(x).view(-1, E), self.c_attn_w).view(b, t, 3 * E).split(E, 2)
        sh = lambda z: z.view(b, t, H, E // H).transpose(1, 2)
        q, k, v = sh(q), sh(k), sh(v)
        w = q @ k.transpose(-1, -2) / (E // H) ** 0.5
        w = torch.where(torch.tril(torch.ones(t, t, dtype=torch.bool)), w, torch.tensor(torch.finfo(w.dtype).min))
        o = (w.softmax(-1) @ v).transpose(1, 2).reshape(b * t, E)
        x = x + torch.addmm(self.c_proj_b, o, self.c_proj_w).view(b, t, E)
        h = F.gelu(torch.addmm(self.fc_b, self.ln_2(x).view(-1, E), self.fc_w), approximate="tanh")
        return x + torch.addmm(self.mp_b, h, self.mp_w).view(b, t, E)

class GPT2(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, E), nn.Embedding(P, E)
        nn.init.normal_(self.wte.weight, std=0.02); nn.init.normal_(self.wpe.weight, std=0.01)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(E)
    def forward(self, embeds):
        x = embeds + self.wpe(torch.arange(embeds.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()

def generate2(gpt, embed, entry_length, top_p=0.8):
    generated, tokens = embed, None
    for _ in range(entry_length):
        logits = gpt(generated)[:, -1, :]
        sl, si = torch.sort(logits, descending=True)
        cp = torch.cumsum(F.softmax(sl, dim=-1), dim=-1)
        rm = cp > top_p
        rm[..., 1:] = rm[..., :-1].clone()
        rm[..., 0] = 0
        logits[:, si[rm]] = -float("inf")
        nt = torch.argmax(logits, -1).unsqueeze(0)
        tokens = nt if tokens is None else torch.cat((tokens, nt), dim=1)
        generated = torch.cat((generated, gpt.wte(nt)), dim=1)
    return tokens

def generate_beam(gpt, embed, entry_length, beam_size=5):
    tokens, scores = None, None
    seq_lengths = torch.ones(beam_size)
    is_stopped = torch.zeros(beam_size, dtype=torch.bool)
    generated = embed
    for _ in range(entry_length):
        logits = gpt(generated)[:, -1, :].softmax(-1).log()
        if scores is None:
            scores, nt = logits.topk(beam_size, -1)
            generated = generated.expand(beam_size, *generated.shape[1:])
            nt, scores = nt.permute(1, 0), scores.squeeze(0)
            tokens = nt
        else:
            logits[is_stopped] = -float("inf")
            logits[is_stopped, 0] = 0
            ss = scores[:, None] + logits
            seq_lengths[~is_stopped] += 1
            avg, nt = (ss / seq_lengths[:, None]).view(-1).topk(beam_size, -1)
            src = nt // ss.shape[1]
            seq_lengths = seq_lengths[src]
            nt = (nt % ss.shape[1]).unsqueeze(1)
            tokens = torch.cat((tokens[src], nt), dim=1)
            generated = generated[src]
            scores = avg * seq_lengths
            is_stopped = is_stopped[src]
        generated = torch.cat((generated, gpt.wte(nt.squeeze()).view(generated.shape[0], 1, -1)), dim=1)
    return tokens

gpt = GPT2().eval()
out = {}
with torch.no_grad():
    pre = torch.randn(1, PREFIX, E) * 0.1
    generate2(gpt, pre, 2)  # warm-up
    t = time.perf_counter(); generate2(gpt, pre, TOKENS); out["greedy_s_per_image"] = time.perf_counter() - t
    t = time.perf_counter(); generate_beam(gpt, pre, TOKENS); out["beam_s_per_image"] = time.perf_counter() - t
    n = 4  # predict.py captions one image at a time: the batched figure is per image, measured on a few
    t = time.perf_counter()
    for i in range(n):
        generate2(gpt, torch.randn(1, PREFIX, E) * 0.1, TOKENS)
    out["batched_greedy_images_per_s"] = n / (time.perf_counter() - t)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of
# a large benchmark process would report its parent's peak.
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        out["peak_rss_mb"] = int(line.split()[1]) / 1024
print(json.dumps(out))
