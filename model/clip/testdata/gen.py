"""Generates the parity fixtures for model/clip (run with Debian's /usr/bin/python3).

Re-implements the image towers of openai/CLIP (VisionTransformer and
ModifiedResNet, following clip/model.py's semantics), builds tiny random
instances, and writes for each:
  <name>.pt                TorchScript archive (torch.jit.script + save) of a
                           full-CLIP-like module: fp16 conv/linear/attn/proj
                           weights as OpenAI's releases, plus text-tower and
                           scalar buffers the Go loader must ignore;
  <name>.safetensors       the same weights under OpenAI names, float32;
  vit_hf.safetensors       the ViT under HuggingFace CLIPVisionModelWithProjection names;
  <name>_in.bin / _out.bin float32 little-endian inputs [B,3,n,n] and the
                           PyTorch fp32 embeddings [B,D];
  images/*.png + embed_vit.bin  small images and the embeddings of
                           clip.py's preprocess (PIL bicubic resize, center
                           crop, normalize) + the ViT, for the embed test.
Expected values are computed in float32 from weights already rounded to fp16
where the .pt stores fp16, so every file holds exactly the same numbers.
"""
import json
import os
import struct
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(1234)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(d, 4 * d)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d)

    def forward(self, x):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class ViT(nn.Module):
    def __init__(self, res, patch, width, layers, heads, out):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        s = width ** -0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((res // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(s * torch.randn(width, out))

    def forward(self, x):
        x = self.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample: Optional[nn.Module] = None
        if stride > 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * 4, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * 4))]))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x
        if self.downsample is not None:
            identity = self.downsample(x)
        return F.relu(out + identity)


class AttnPool(nn.Module):
    def __init__(self, spacial, d, heads, out):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial ** 2 + 1, d) / d ** 0.5)
        self.k_proj = nn.Linear(d, d)
        self.q_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.c_proj = nn.Linear(d, out)
        self.num_heads = heads

    def forward(self, x):
        x = x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3]).permute(2, 0, 1)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
        x = x + self.positional_embedding[:, None, :]
        x, _ = F.multi_head_attention_forward(
            query=x, key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight, in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=False, need_weights=False)
        return x[0]


class ResNet(nn.Module):
    def __init__(self, layers, out, heads, res, width):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self.inplanes = width
        self.layer1 = self._layer(width, layers[0])
        self.layer2 = self._layer(width * 2, layers[1], 2)
        self.layer3 = self._layer(width * 4, layers[2], 2)
        self.layer4 = self._layer(width * 8, layers[3], 2)
        self.attnpool = AttnPool(res // 32, width * 32, heads, out)

    def _layer(self, planes, n, stride=1):
        blocks = [Bottleneck(self.inplanes, planes, stride)]
        self.inplanes = planes * 4
        blocks += [Bottleneck(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(F.relu(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class FullCLIP(nn.Module):
    """The visual tower plus a stand-in text tower and the scalar buffers
    OpenAI's archives carry, which the Go loader must ignore."""

    def __init__(self, visual, embed, res):
        super().__init__()
        self.visual = visual
        self.transformer = Transformer(16, 1, 1)
        self.token_embedding = nn.Embedding(10, 16)
        self.positional_embedding = nn.Parameter(torch.randn(7, 16))
        self.ln_final = nn.LayerNorm(16)
        self.text_projection = nn.Parameter(torch.randn(16, embed))
        self.logit_scale = nn.Parameter(torch.ones([]))
        self.register_buffer("input_resolution", torch.tensor(res))
        self.register_buffer("context_length", torch.tensor(7))
        self.register_buffer("vocab_size", torch.tensor(10))

    def forward(self, image):
        return self.visual(image)


def randomize(m, all_half=False):
    """Non-trivial values everywhere (BN stats and affine included), with the
    tensors that convert_weights makes fp16 rounded to fp16 already (with
    all_half, every float tensor, so an fp16 safetensors holds them exactly)."""
    with torch.no_grad():
        for name, mod in m.named_modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(7)
            if isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_bias.uniform_(-0.2, 0.2)
                mod.out_proj.bias.uniform_(-0.2, 0.2)
    for name, p in m.state_dict().items():
        if p.is_floating_point() and (all_half or half_name(name)):
            p.copy_(p.half().float())


def half_name(name):
    # What clip/model.py's convert_weights turns into fp16.
    last = name.split(".")[-1]
    if name.endswith(("conv1.weight", "conv2.weight", "conv3.weight", "downsample.0.weight")):
        return True
    if ".bn" in name or "downsample.1" in name or "ln_" in name:
        return False
    return last in ("in_proj_weight", "in_proj_bias", "proj", "text_projection") or \
        any(s in name for s in ("out_proj.", "c_fc.", "c_proj.", "q_proj.", "k_proj.", "v_proj."))


def to_half_for_archive(m):
    for name, p in list(m.named_parameters()):
        if half_name(name):
            p.data = p.data.half()


DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16), torch.int64: ("I64", np.int64)}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        code, npt = DT[t.dtype]
        b = t.numpy().astype(npt).astype(np.dtype(npt).newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_f32(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().float().contiguous().numpy().astype("<f4").tobytes())


def hf_names(sd, layers):
    """OpenAI ViT names -> CLIPVisionModelWithProjection names (q/k/v split,
    projection transposed)."""
    out = {
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.embeddings.position_ids": torch.arange(sd["visual.positional_embedding"].shape[0])[None],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].t().contiguous(),
        "text_projection.weight": torch.randn(8, 16),  # ignored by the image loader
        "logit_scale": torch.tensor(2.0),
    }
    for i in range(layers):
        o = f"visual.transformer.resblocks.{i}."
        h = f"vision_model.encoder.layers.{i}."
        q, k, v = sd[o + "attn.in_proj_weight"].chunk(3)
        qb, kb, vb = sd[o + "attn.in_proj_bias"].chunk(3)
        for n, w, b in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
            out[h + f"self_attn.{n}_proj.weight"] = w.contiguous()
            out[h + f"self_attn.{n}_proj.bias"] = b.contiguous()
        out[h + "self_attn.out_proj.weight"] = sd[o + "attn.out_proj.weight"]
        out[h + "self_attn.out_proj.bias"] = sd[o + "attn.out_proj.bias"]
        for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[h + b + ".weight"] = sd[o + a + ".weight"]
            out[h + b + ".bias"] = sd[o + a + ".bias"]
    return out


def make(name, visual, embed, res, batch, all_half=False):
    model = FullCLIP(visual, embed, res).eval()
    randomize(model, all_half)
    x = torch.randn(batch, 3, res, res)
    with torch.no_grad():
        want = model(x)
    write_f32(os.path.join(HERE, name + "_in.bin"), x)
    write_f32(os.path.join(HERE, name + "_out.bin"), want)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(HERE, name + ".safetensors"), sd)
    to_half_for_archive(model)
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, os.path.join(HERE, name + ".pt"))
    back = torch.jit.load(os.path.join(HERE, name + ".pt")).state_dict()
    assert back["visual.conv1.weight"].dtype == torch.float16
    print(name, tuple(want.shape), "norm", float(want.norm()))
    return sd, want


def preprocess(img, n):
    # clip.py's _transform: Resize(n, BICUBIC) (shorter side), CenterCrop(n), RGB, normalize.
    w, h = img.size
    if w <= h:
        nw, nh = n, int(n * h / w)
    else:
        nw, nh = int(n * w / h), n
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = int(round((nw - n) / 2.0)), int(round((nh - n) / 2.0))
    img = img.crop((left, top, left + n, top + n)).convert("RGB")
    a = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    return (a - mean) / std


def main():
    vit_layers = 2
    # heads 2 although build_model would infer 64 // 64 = 1: the Go tests
    # override it, which exercises the multi-head split.
    sd, _ = make("vit", ViT(32, 8, 64, vit_layers, 2, 16), 16, 32, 3, all_half=True)
    hf = {k: (v.half() if v.is_floating_point() else v) for k, v in hf_names(sd, vit_layers).items()}
    write_safetensors(os.path.join(HERE, "vit_hf.safetensors"), hf)
    # width 4: heads 4*32//64 = 2 as build_model infers; layer1 has 2 blocks.
    make("rn", ResNet((2, 1, 1, 1), 24, 2, 64, 4), 24, 64, 2)

    # Images for the embed test: a smooth gradient and a noisy one, different sizes.
    os.makedirs(os.path.join(HERE, "images"), exist_ok=True)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:45, 0:61]
    a = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(a).save(os.path.join(HERE, "images", "grad_61x45.png"))
    b = rng.integers(0, 256, (50, 38, 3), dtype=np.uint8)
    Image.fromarray(b).save(os.path.join(HERE, "images", "noise_38x50.png"))
    with open(os.path.join(HERE, "images", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not really")
    vit = ViT(32, 8, 64, vit_layers, 2, 16).eval()
    vit.load_state_dict({k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")})
    imgs = torch.stack([preprocess(Image.open(os.path.join(HERE, "images", f)), 32)
                        for f in ("grad_61x45.png", "noise_38x50.png", "grad_61x45.png")])
    with torch.no_grad():
        write_f32(os.path.join(HERE, "embed_vit.bin"), vit(imgs))


if __name__ == "__main__":
    main()
