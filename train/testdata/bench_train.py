#!/usr/bin/python3
"""PyTorch re-creation of the original CLIP_prefix_caption train.py loop.

Semantics kept from the original: every caption padded to
min(int(mean + 10*std), max) tokens of the whole dataset, padding id 0 and
cross_entropy(ignore_index=0), logits of every position, transformers.AdamW
(eps 1e-6, no bias correction inside the root) with
get_linear_schedule_with_warmup, model.zero_grad() each step, and for
--only_prefix ClipCaptionPrefix: the optimizer gets only clip_project's
parameters but GPT-2's still require grad (backward computes their grads),
GPT-2 in eval mode. GPT-2 itself is HuggingFace's GPT2LMHeadModel math in
plain torch (no transformers package here).

  bench_train.py bench mlp|transformer [steps]   samples/s, GPT-2 small, batch 40
  bench_train.py parity                          writes parity.pt / parity.json (tiny model)

Caption lengths: COCO-like (mean ~11.5, tail to 60) from the LCG that
train/bench_test.go uses, so both sides see the same batches.
"""
import json, math, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
HERE = os.path.dirname(os.path.abspath(__file__))

class LCG:
    def __init__(self, seed):
        self.x = seed & (2**64 - 1)
    def next(self):
        self.x = (self.x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return self.x
    def uniform(self):
        return ((self.next() >> 11) + 0.5) / 2.0**53

def caption_lengths(n, seed=7):
    r = LCG(seed)
    return [min(60, max(5, int(8 + -math.log(r.uniform()) * 3.5))) for _ in range(n)]

def captions(n, vocab, seed=7):
    r = LCG(seed * 31 + 1)
    return [[1 + (r.next() >> 20) % (vocab - 1) for _ in range(l)] for l in caption_lengths(n, seed)]

class Conv1D(nn.Module):
    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))
    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], -1)

class Block(nn.Module):
    def __init__(self, e, h, p):
        super().__init__()
        self.ln_1, self.ln_2, self.h, self.p = nn.LayerNorm(e), nn.LayerNorm(e), h, p
        self.attn = nn.Module(); self.attn.c_attn, self.attn.c_proj = Conv1D(e, 3 * e), Conv1D(e, e)
        self.mlp = nn.Module(); self.mlp.c_fc, self.mlp.c_proj = Conv1D(e, 4 * e), Conv1D(4 * e, e)
    def forward(self, x, bias):
        b, t, e = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(e, dim=2)
        sh = lambda z: z.view(b, t, self.h, e // self.h).transpose(1, 2)
        w = (sh(q) @ sh(k).transpose(-1, -2)) / math.sqrt(e // self.h) + bias
        w = F.dropout(w.softmax(-1), self.p, self.training)
        o = (w @ sh(v)).transpose(1, 2).reshape(b, t, e)
        x = x + F.dropout(self.attn.c_proj(o), self.p, self.training)
        return x + F.dropout(self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh")), self.p, self.training)

class GPT2(nn.Module):
    def __init__(self, vocab, pos, e, layers, heads, p):
        super().__init__()
        self.transformer = nn.Module()
        tr = self.transformer
        tr.wte, tr.wpe = nn.Embedding(vocab, e), nn.Embedding(pos, e)
        nn.init.normal_(tr.wte.weight, std=0.02); nn.init.normal_(tr.wpe.weight, std=0.01)
        tr.h = nn.ModuleList([Block(e, heads, p) for _ in range(layers)])
        tr.ln_f, self.p = nn.LayerNorm(e), p
    def forward(self, embeds, mask):
        b, t, _ = embeds.shape
        tr = self.transformer
        x = F.dropout(embeds + tr.wpe(torch.arange(t)), self.p, self.training)
        lo = torch.finfo(x.dtype).min
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        bias = torch.zeros(t, t).masked_fill(causal, lo).view(1, 1, t, t) + (1.0 - mask[:, None, None, :]) * lo
        for blk in tr.h:
            x = blk(x, bias)
        return tr.ln_f(x) @ tr.wte.weight.t()

class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.Tanh(), nn.Linear(sizes[1], sizes[2]))
    def forward(self, x):
        return self.model(x)

class MHA(nn.Module):  # the original's MultiHeadAttention (q, kv projections without bias)
    def __init__(self, e, h):
        super().__init__()
        self.h, self.to_queries, self.to_keys_values, self.project = h, nn.Linear(e, e, bias=False), nn.Linear(e, 2 * e, bias=False), nn.Linear(e, e)
    def forward(self, x):
        b, n, c = x.shape
        q = self.to_queries(x).reshape(b, n, self.h, c // self.h)
        kv = self.to_keys_values(x).reshape(b, n, 2, self.h, c // self.h)
        att = torch.einsum('bnhd,bmhd->bnmh', q, kv[:, :, 0]) * (c // self.h) ** -0.5
        out = torch.einsum('bnmh,bmhd->bnhd', att.softmax(dim=2), kv[:, :, 1]).reshape(b, n, c)
        return self.project(out)

class TLayer(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(e), MHA(e, h), nn.LayerNorm(e)
        self.mlp = nn.Module(); self.mlp.fc1, self.mlp.fc2 = nn.Linear(e, 2 * e), nn.Linear(2 * e, e)
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp.fc2(F.relu(self.mlp.fc1(self.norm2(x))))

class TransformerMapper(nn.Module):
    def __init__(self, d, e, L, clip_len, layers):
        super().__init__()
        self.clip_length, self.linear = clip_len, nn.Linear(d, clip_len * e)
        self.transformer = nn.Module(); self.transformer.layers = nn.ModuleList([TLayer(e, 8) for _ in range(layers)])
        self.prefix_const = nn.Parameter(torch.randn(L, e))
    def forward(self, x):
        x = self.linear(x).view(x.shape[0], self.clip_length, -1)
        x = torch.cat((x, self.prefix_const.unsqueeze(0).expand(x.shape[0], *self.prefix_const.shape)), dim=1)
        for l in self.transformer.layers:
            x = l(x)
        return x[:, self.clip_length:]

class ClipCap(nn.Module):
    def __init__(self, gpt, mapper, L, e):
        super().__init__()
        self.gpt, self.clip_project, self.L, self.e = gpt, mapper, L, e
    def forward(self, tokens, prefix, mask):
        emb = self.gpt.transformer.wte(tokens)
        pre = self.clip_project(prefix).view(-1, self.L, self.e)
        return self.gpt(torch.cat((pre, emb), dim=1), mask)

class ClipCapPrefix(ClipCap):  # --only_prefix
    def parameters(self, recurse=True):
        return self.clip_project.parameters()
    def train(self, mode=True):
        super().train(mode)
        self.gpt.eval()
        return self

class HFAdamW:  # transformers.AdamW
    def __init__(self, params, lr, eps=1e-6):
        self.params, self.lr, self.eps, self.state = list(params), lr, eps, {}
    @torch.no_grad()
    def step(self):
        for p in self.params:
            if p.grad is None:
                continue
            st = self.state.setdefault(p, {"step": 0, "m": torch.zeros_like(p), "v": torch.zeros_like(p)})
            st["step"] += 1
            st["m"].mul_(0.9).add_(p.grad, alpha=0.1)
            st["v"].mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
            denom = st["v"].sqrt().add_(self.eps)
            ss = self.lr * math.sqrt(1 - 0.999 ** st["step"]) / (1 - 0.9 ** st["step"])
            p.addcdiv_(st["m"], denom, value=-ss)

def linear_warmup(step, warm, total):
    return step / max(1, warm) if step < warm else max(0.0, (total - step) / max(1, total - warm))

def pad(caps, max_len, L):
    toks = torch.zeros(len(caps), max_len, dtype=torch.int64)
    mask = torch.zeros(len(caps), L + max_len)
    mask[:, :L] = 1
    for i, c in enumerate(caps):
        c = c[:max_len]
        toks[i, :len(c)] = torch.tensor(c)
        mask[i, L:L + len(c)] = 1
    return toks, mask

def train_steps(model, opt, batches, max_len, L, warm, total, on_step=None):
    model.train()
    for i, (emb, caps) in enumerate(batches):
        tokens, mask = pad(caps, max_len, L)
        for g in [opt]:
            g.lr_now = opt.lr
        model.zero_grad()
        logits = model(tokens, emb, mask)[:, L - 1:-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.flatten(), ignore_index=0)
        loss.backward()
        lr0 = opt.lr
        opt.lr = lr0 * linear_warmup(i, warm, total)
        opt.step()
        opt.lr = lr0
        model.zero_grad()
        if on_step:
            on_step(i, loss.item())

def dataset_max_len(caps):
    l = torch.tensor([len(c) for c in caps]).float()
    return min(int(l.mean() + l.std() * 10), int(l.max()))

def bench(kind, steps):
    torch.manual_seed(0)
    vocab, e, bs = 50257, 768, 40
    if kind == "mlp":
        L, p = 10, 0.1
        mapper = MLP((512, e * L // 2, e * L))
    else:
        L, p = 40, 0.1
        mapper = TransformerMapper(512, e, L, 40, 8)
    gpt = GPT2(vocab, 1024, e, 12, 12, p)
    model = (ClipCapPrefix if kind == "transformer" else ClipCap)(gpt, mapper, L, e)
    opt = HFAdamW(model.parameters(), 2e-5)
    n = bs * (steps + 1)
    caps = captions(20000, vocab)  # the dataset the padding length comes from
    max_len = dataset_max_len(caps)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(bs, 512, generator=g), caps[i * bs:(i + 1) * bs]) for i in range(steps + 1)]
    times = []
    t0 = [time.perf_counter()]
    def on_step(i, loss):
        now = time.perf_counter()
        if i > 0:  # the first step warms up
            times.append(now - t0[0])
        t0[0] = now
    train_steps(model, opt, batches, max_len, L, 5000, 100000, on_step)
    sps = bs * len(times) / sum(times)
    print(json.dumps({"kind": kind, "impl": "pytorch-original", "pad_len": max_len, "samples_per_s": sps, "s_per_step": sum(times) / len(times)}))

def parity():
    """Tiny MLP model, dropout off: initial weights, batches and per-step losses."""
    torch.manual_seed(3)
    vocab, e, L, d, bs, steps = 257, 32, 4, 16, 6, 6
    gpt = GPT2(vocab, 64, e, 2, 4, 0.0)
    for n, prm in gpt.named_parameters():  # non-trivial LayerNorms and biases
        if "ln" in n or n.endswith("bias"):
            prm.data += 0.1 * torch.randn_like(prm)
    model = ClipCap(gpt, MLP((d, e * L // 2, e * L)), L, e)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    caps = captions(bs * steps, vocab, seed=11)
    caps = [[t if t != 0 else 1 for t in c] for c in caps]
    max_len = dataset_max_len(caps)
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(bs, d, generator=g), caps[i * bs:(i + 1) * bs]) for i in range(steps)]
    losses = []
    opt = HFAdamW(model.parameters(), 1e-2)
    train_steps(model, opt, batches, max_len, L, 2, steps, lambda i, l: losses.append(l))
    torch.save(sd, os.path.join(HERE, "parity_init.pt"))
    with open(os.path.join(HERE, "parity.json"), "w") as f:
        json.dump({"lr": 1e-2, "warmup": 2, "total": steps, "pad_len": max_len, "prefix_length": L,
                   "batches": [{"emb": b[0].flatten().tolist(), "captions": b[1]} for b in batches],
                   "losses": losses}, f)
    print("parity losses", losses)

if __name__ == "__main__":
    if sys.argv[1] == "parity":
        parity()
    else:
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
