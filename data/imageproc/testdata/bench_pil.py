#!/usr/bin/python3
"""Times PIL + torchvision decode+preprocess of the benchmark JPEG (one
thread), for comparison with BenchmarkPreprocessJPEG."""
import io
import time

import torch
from PIL import Image
from torchvision import transforms as T

torch.set_num_threads(1)
data = open("in/rgb420_640x480.jpg", "rb").read()
t = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
               lambda im: im.convert("RGB"), T.ToTensor(),
               T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
for label, fn in [("decode", lambda: Image.open(io.BytesIO(data)).load()),
                  ("decode+preprocess", lambda: t(Image.open(io.BytesIO(data))))]:
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3:
        fn()
        n += 1
    print(f"{label}: {(time.perf_counter() - t0) / n * 1e3:.2f} ms/image")
