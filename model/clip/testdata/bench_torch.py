"""PyTorch reference timing for BenchmarkEncodeViTB32: the same ViT-B/32
forward (gen.py's ViT, random weights), 2 threads, no grad, batch 8 and 32.
Run with /usr/bin/python3; pass the same OPENBLAS_CORETYPE/OMP_WAIT_POLICY
environment the Go runtime chooses (internal/torchrt) for a fair comparison."""
import time

import torch

from gen import ViT

torch.set_num_threads(2)
m = ViT(224, 32, 768, 12, 12, 512).eval()
with torch.no_grad():
    for batch in (8, 32):
        x = torch.randn(batch, 3, 224, 224)
        m(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 10:
            m(x)
            n += 1
        dt = time.perf_counter() - t0
        print(f"batch{batch}: {n * batch / dt:.1f} images/s ({dt / n * 1000:.0f} ms/batch, {n} runs)")
