#!/usr/bin/python3
"""Reference outputs for clipcap's model parity tests.

Written from the semantics of HuggingFace's GPT2LMHeadModel and of the
official CLIP_prefix_caption code (train.py's MLP / TransformerMapper /
ClipCaptionModel, predict.py's generate_beam / generate2). Run with Debian's
python3-torch:  /usr/bin/python3 gen_reference.py  (writes into this folder).
"""
import math, os, json
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
OUT = os.path.dirname(os.path.abspath(__file__))

# ---------------- GPT-2 (HuggingFace semantics, our own code) ----------------
class Conv1D(nn.Module):
    def __init__(self, nf, nx):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)
    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(*x.shape[:-1], -1)

class Attn(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.c_attn, self.c_proj, self.h = Conv1D(3 * e, e), Conv1D(e, e), h
    def forward(self, x, mask):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        sh = lambda z: z.view(b, t, self.h, e // self.h).transpose(1, 2)
        q, k, v = sh(q), sh(k), sh(v)
        w = q @ k.transpose(-1, -2) / (v.size(-1) ** 0.5)
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool)).view(1, 1, t, t)
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min))
        if mask is not None:
            w = w + (1.0 - mask[:, None, None, :]) * torch.finfo(w.dtype).min
        w = w.softmax(-1)
        o = (w @ v).transpose(1, 2).reshape(b, t, e)
        return self.c_proj(o)

class MLP_(nn.Module):
    def __init__(self, e):
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(4 * e, e), Conv1D(e, 4 * e)
    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

class Block(nn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = nn.LayerNorm(e), Attn(e, h), nn.LayerNorm(e), MLP_(e)
        for ln in (self.ln_1, self.ln_2):
            ln.weight.data = 1 + 0.1 * torch.randn(e); ln.bias.data = 0.1 * torch.randn(e)
    def forward(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))

class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e = cfg["n_embd"]
        self.wte = nn.Embedding(cfg["vocab_size"], e)
        self.wpe = nn.Embedding(cfg["n_positions"], e)
        self.wte.weight.data.normal_(0, 0.5); self.wpe.weight.data.normal_(0, 0.1)
        self.h = nn.ModuleList([Block(e, cfg["n_head"]) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(e)
    def forward(self, embeds, mask=None):
        pos = torch.arange(embeds.shape[1])
        x = embeds + self.wpe(pos)
        for blk in self.h:
            x = blk(x, mask)
        return self.ln_f(x)

class GPT2LM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transformer = Transformer(cfg)
    def forward(self, inputs_embeds, attention_mask=None):
        return self.transformer(inputs_embeds, attention_mask) @ self.transformer.wte.weight.t()

# ---------------- mappers and ClipCaptionModel (official semantics) ----------------
class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)
    def forward(self, x):
        return self.model(x)

class MHA(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.num_heads, self.scale = heads, (d // heads) ** -0.5
        self.to_queries = nn.Linear(d, d, bias=False)
        self.to_keys_values = nn.Linear(d, 2 * d, bias=False)
        self.project = nn.Linear(d, d)
    def forward(self, x):
        b, n, c = x.shape
        q = self.to_queries(x).reshape(b, n, self.num_heads, c // self.num_heads)
        kv = self.to_keys_values(x).reshape(b, n, 2, self.num_heads, c // self.num_heads)
        k, v = kv[:, :, 0], kv[:, :, 1]
        att = torch.einsum('bnhd,bmhd->bnmh', q, k) * self.scale
        att = att.softmax(dim=2)
        out = torch.einsum('bnmh,bmhd->bnhd', att, v).reshape(b, n, c)
        return self.project(out)

class MlpT(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, d)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

class TLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.norm1, self.attn, self.norm2, self.mlp = nn.LayerNorm(d), MHA(d, heads), nn.LayerNorm(d), MlpT(d, 2 * d)
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

class TStack(nn.Module):
    def __init__(self, d, heads, layers):
        super().__init__()
        self.layers = nn.ModuleList([TLayer(d, heads) for _ in range(layers)])
    def forward(self, x):
        for l in self.layers:
            x = l(x)
        return x

class TransformerMapper(nn.Module):
    def __init__(self, dim_clip, e, prefix_length, clip_length, num_layers):
        super().__init__()
        self.clip_length = clip_length
        self.transformer = TStack(e, 8, num_layers)
        self.linear = nn.Linear(dim_clip, clip_length * e)
        self.prefix_const = nn.Parameter(torch.randn(prefix_length, e))
    def forward(self, x):
        x = self.linear(x).view(x.shape[0], self.clip_length, -1)
        prefix = self.prefix_const.unsqueeze(0).expand(x.shape[0], *self.prefix_const.shape)
        return self.transformer(torch.cat((x, prefix), dim=1))[:, self.clip_length:]

class ClipCap(nn.Module):
    def __init__(self, cfg, prefix_length, clip_dim, kind, clip_length=None, num_layers=None):
        super().__init__()
        self.prefix_length = prefix_length
        self.gpt = GPT2LM(cfg)
        e = cfg["n_embd"]
        self.e = e
        if kind == "mlp":
            self.clip_project = MLP((clip_dim, e * prefix_length // 2, e * prefix_length))
        else:
            self.clip_project = TransformerMapper(clip_dim, e, prefix_length, clip_length, num_layers)
    def forward(self, tokens, prefix, mask=None):
        emb = self.gpt.transformer.wte(tokens)
        pre = self.clip_project(prefix).view(-1, self.prefix_length, self.e)
        return self.gpt(torch.cat((pre, emb), dim=1), mask)

# ---------------- predict.py's decoding (no cache, one image at a time) ----------------
def generate_beam(model, embed, beam_size=5, entry_length=67, stop_token_index=13):
    tokens, scores = None, None
    seq_lengths = torch.ones(beam_size)
    is_stopped = torch.zeros(beam_size, dtype=torch.bool)
    generated = embed
    for i in range(entry_length):
        logits = model.gpt(inputs_embeds=generated)[:, -1, :]
        logits = logits.softmax(-1).log()
        if scores is None:
            scores, next_tokens = logits.topk(beam_size, -1)
            generated = generated.expand(beam_size, *generated.shape[1:])
            next_tokens, scores = next_tokens.permute(1, 0), scores.squeeze(0)
            tokens = next_tokens
        else:
            logits[is_stopped] = -float("inf")
            logits[is_stopped, 0] = 0
            scores_sum = scores[:, None] + logits
            seq_lengths[~is_stopped] += 1
            avg = scores_sum / seq_lengths[:, None]
            avg, next_tokens = avg.view(-1).topk(beam_size, -1)
            src = next_tokens // scores_sum.shape[1]
            seq_lengths = seq_lengths[src]
            next_tokens = (next_tokens % scores_sum.shape[1]).unsqueeze(1)
            tokens = torch.cat((tokens[src], next_tokens), dim=1)
            generated = generated[src]
            scores = avg * seq_lengths
            is_stopped = is_stopped[src]
        nte = model.gpt.transformer.wte(next_tokens.squeeze()).view(generated.shape[0], 1, -1)
        generated = torch.cat((generated, nte), dim=1)
        is_stopped = is_stopped + next_tokens.eq(stop_token_index).squeeze()
        if is_stopped.all():
            break
    scores = scores / seq_lengths
    order = scores.argsort(descending=True)
    best = order[0]
    return tokens[best][: int(seq_lengths[best])].tolist(), float(scores[best])

def generate_greedy(model, embed, entry_length=67, top_p=0.8, stop_token_index=13):
    generated, tokens = embed, None
    for i in range(entry_length):
        logits = model.gpt(inputs_embeds=generated)[:, -1, :]
        sl, si = torch.sort(logits, descending=True)
        cp = torch.cumsum(F.softmax(sl, dim=-1), dim=-1)
        rm = cp > top_p
        rm[..., 1:] = rm[..., :-1].clone()
        rm[..., 0] = 0
        logits[:, si[rm]] = -float("inf")
        nt = torch.argmax(logits, -1).unsqueeze(0)
        tokens = nt if tokens is None else torch.cat((tokens, nt), dim=1)
        generated = torch.cat((generated, model.gpt.transformer.wte(nt)), dim=1)
        if stop_token_index == nt.item():
            break
    return tokens.squeeze(0).tolist()

# ---------------- a tiny safetensors writer (the spec: u64 header length, JSON, data) ----------------
def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().float()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for b in blobs: f.write(b)

CFG = {"vocab_size": 96, "n_positions": 128, "n_embd": 32, "n_layer": 2, "n_head": 4,
       "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
       "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
json.dump(CFG, open(os.path.join(OUT, "gpt2_config.json"), "w"), indent=1)

def case(kind, prefix_length, clip_dim, clip_length=None, num_layers=None):
    model = ClipCap(CFG, prefix_length, clip_dim, kind, clip_length, num_layers)
    model.eval()
    sd = model.state_dict()
    sd["gpt.lm_head.weight"] = sd["gpt.transformer.wte.weight"]  # as GPT2LMHeadModel's state dict has it
    torch.save(sd, os.path.join(OUT, f"official_{kind}.pt"))
    if kind == "mlp":
        # HuggingFace GPT-2 checkpoints in both layouts the hub uses.
        hf = {k[len("gpt."):]: v for k, v in sd.items() if k.startswith("gpt.")}
        hf["transformer.h.0.attn.bias"] = torch.tril(torch.ones(128, 128)).view(1, 1, 128, 128)
        save_safetensors(os.path.join(OUT, "hf_gpt2.safetensors"), hf)
        bare = {k[len("transformer."):]: v for k, v in hf.items() if k.startswith("transformer.")}
        torch.save(bare, os.path.join(OUT, "hf_gpt2_bare.bin"))

    B, T = 3, 7
    clip = torch.randn(B, clip_dim)
    tokens = torch.randint(1, CFG["vocab_size"], (B, T))
    lengths = [7, 4, 5]
    tmask = torch.zeros(B, T)
    for i, l in enumerate(lengths):
        tmask[i, :l] = 1
        tokens[i, l:] = 0  # the original pads with 0
    mask = torch.cat((torch.ones(B, prefix_length), tmask), dim=1)
    logits = model(tokens, clip, mask)
    pred = logits[:, prefix_length - 1:-1]
    target = tokens.masked_fill(tmask == 0, -100)
    loss = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.flatten(), ignore_index=-100)
    official = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tokens.flatten(), ignore_index=0)
    assert abs(loss.item() - official.item()) < 1e-6  # no "!" in these captions
    loss.backward()
    out = {"clip": clip, "tokens": tokens, "token_mask": tmask, "logits": logits.detach(), "loss": loss.detach()}
    for name, p in model.named_parameters():
        if p.grad is not None:
            out["grad." + name] = p.grad.detach().clone()

    gen = []
    with torch.no_grad():
        embs = torch.randn(4, clip_dim)
        out["gen_clip"] = embs
        for i in range(4):
            pre = model.clip_project(embs[i:i + 1]).view(1, prefix_length, -1)
            # No stop (13 never comes up in these tiny models), then stops taken
            # from that output so that beams and greedy runs end early.
            free = generate_greedy(model, pre, stop_token_index=13)
            fb, _ = generate_beam(model, pre, stop_token_index=13)
            stops = list(dict.fromkeys([13] + free[1:4] + fb[1:6]))[:6]
            for stop in stops:
                bt, bs = generate_beam(model, pre, stop_token_index=stop)
                gt = generate_greedy(model, pre, stop_token_index=stop)
                gen.append({"image": i, "stop": stop, "beam": bt, "beam_score": bs, "greedy": gt})
    torch.save(out, os.path.join(OUT, f"expected_{kind}.pt"))
    json.dump(gen, open(os.path.join(OUT, f"generate_{kind}.json"), "w"))

case("mlp", prefix_length=4, clip_dim=16)
case("transformer", prefix_length=5, clip_dim=16, clip_length=3, num_layers=2)
print("ok")
