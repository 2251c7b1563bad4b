"""PyTorch reference for BenchmarkExtractViTB32: PIL decode + CLIP's
torchvision transform + a random-weight ViT-B/32 image tower (openai/CLIP's
architecture) at batch 32, on 64 generated 640x480 JPEGs, 2 threads.

    /usr/bin/python3 extract/testdata/bench_pil_torch.py

Prints images/s for the whole pipeline (sequential, as clip's own scripts
run) and for each stage.
"""
import io
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

torch.set_num_threads(2)
torch.manual_seed(0)
N, BATCH, NPX = 64, 16, 224  # BATCH = benchBatch in bench_test.go


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), QuickGELU(), nn.Linear(4 * d, d))
        self.ln_2 = nn.LayerNorm(d)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ViT(nn.Module):
    def __init__(self, res=224, patch=32, width=768, layers=12, heads=12, out=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        s = width ** -0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((res // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(s * torch.randn(width, out))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], 1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.blocks(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj


def main():
    rng = np.random.default_rng(0)
    files = []
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(N):
        a = np.stack([(xx * 7 + i * 31) % 256, (yy * 5 + i * 17) % 256, ((xx ^ yy) + i * 3) % 256], -1).astype(np.uint8)
        a = np.clip(a.astype(int) + rng.integers(-8, 8, a.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=90)
        files.append(buf.getvalue())
    transform = Compose([Resize(NPX, interpolation=InterpolationMode.BICUBIC), CenterCrop(NPX),
                         lambda im: im.convert("RGB"), ToTensor(),
                         Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    model = ViT().eval()

    t0 = time.perf_counter()
    ims = []
    for f in files:
        im = Image.open(io.BytesIO(f))
        im.load()
        ims.append(im)
    t_dec = time.perf_counter() - t0
    t0 = time.perf_counter()
    px = torch.stack([transform(im) for im in ims])
    t_pre = time.perf_counter() - t0
    with torch.no_grad():
        model(px[:BATCH])  # warm-up
        t0 = time.perf_counter()
        for k in range(0, N, BATCH):
            model(px[k:k + BATCH])
        t_enc = time.perf_counter() - t0
    total = t_dec + t_pre + t_enc
    print(f"decode {N / t_dec:.1f} images/s, preprocess {N / t_pre:.1f} images/s, "
          f"encoder {N / t_enc:.1f} images/s; pipeline {N / total:.1f} images/s "
          f"(decode {t_dec / total:.0%}, preprocess {t_pre / total:.0%}, encoder {t_enc / total:.0%})")


if __name__ == "__main__":
    main()
