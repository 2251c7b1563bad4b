#!/usr/bin/python3
"""Generates the imageproc test inputs and PIL/torchvision reference outputs.

Run with Debian's Python (python3-pil 9.4, python3-torchvision 0.14,
python3-numpy):  /usr/bin/python3 gen.py   (from this directory)

Writes:
  in/*            small input images in many formats and PIL modes
  want/*.png      the expected RGB crop for (input, n_px), as an RGB PNG
  cases.json      one entry per (input, n_px): PIL's mode and the crop file
  norm.bin        torch's ToTensor+Normalize of every byte value, float32
                  little-endian [3][256] (channel-major)
  errors/*        inputs that PIL refuses
"""
import io
import json
import os
import struct
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

assert torchvision.__version__.startswith("0.14"), torchvision.__version__
assert Image.__version__.startswith("9.4"), Image.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
IN = os.path.join(HERE, "in")
WANT = os.path.join(HERE, "want")
ERR = os.path.join(HERE, "errors")
for d in (IN, WANT, ERR):
    os.makedirs(d, exist_ok=True)

rng = np.random.default_rng(1234)


def scene(w, h, channels=3):
    """Smooth gradients, hard-edged shapes and one noisy patch: smooth areas
    keep the files small, edges and noise exercise the filter's rounding."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, channels))
    for c in range(channels):
        out[..., c] = 127 + 120 * np.sin(x / (17 + 5 * c) + y / (23 + 3 * c) + c)
    cx, cy = w * 0.6, h * 0.4
    disk = (x - cx) ** 2 + (y - cy) ** 2 < (min(w, h) * 0.2) ** 2
    out[disk] = 255 - out[disk]
    out[(x > w * 0.1) & (x < w * 0.3) & (y > h * 0.6) & (y < h * 0.9)] = 10
    pw, ph = max(1, w // 10), max(1, h // 10)
    out[:ph, :pw] = rng.integers(0, 256, size=(ph, pw, channels))
    return np.clip(out, 0, 255).astype(np.uint8)


def png_raw(path, w, h, depth, ctype, rows, plte=None, trns=None):
    """Writes a PNG from raw scanline bytes (filter 0), for layouts PIL
    cannot save (16-bit RGB, 4-bit grey, short palettes)."""

    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    if plte is not None:
        data += chunk(b"PLTE", plte)
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows), 9))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def make_inputs():
    p = lambda name: os.path.join(IN, name)
    # JPEG
    Image.fromarray(scene(640, 480)).save(p("rgb420_640x480.jpg"), quality=85, subsampling=2)
    Image.fromarray(scene(300, 201)).save(p("rgb444_300x201.jpg"), quality=90, subsampling=0)
    Image.fromarray(scene(333, 257)).save(p("rgb422_333x257.jpg"), quality=80, subsampling=1)
    Image.fromarray(scene(257, 333)).save(p("progressive_257x333.jpg"), quality=85, progressive=True)
    Image.fromarray(scene(200, 150, 1)[..., 0], "L").save(p("gray_200x150.jpg"), quality=90)
    Image.fromarray(scene(180, 240, 4), "CMYK").save(p("cmyk_180x240.jpg"), quality=90)
    # EXIF orientation 6 (rotate 90): PIL ignores it, so must we.
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(scene(320, 200)).save(p("exif_rot6_320x200.jpg"), quality=85, exif=ex.tobytes())
    # PNG in every mode PIL distinguishes
    Image.fromarray(scene(333, 251)).save(p("rgb_333x251.png"))
    rgba = scene(250, 190, 4)
    rgba[:40, :, 3] = 0
    rgba[40:80, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(p("rgba_250x190.png"))
    Image.fromarray(scene(211, 160, 1)[..., 0], "L").save(p("l_211x160.png"))
    Image.fromarray(scene(190, 230, 2), "LA").save(p("la_190x230.png"))
    Image.fromarray(scene(260, 200)).quantize(200).save(p("p_260x200.png"))
    Image.fromarray(scene(150, 130, 1)[..., 0] > 128).save(p("bit1_150x130.png"))
    # 16-bit grey opens as mode I; only values below 256 survive convert("RGB").
    g16 = (scene(170, 140, 1)[..., 0].astype(np.uint16) * 2).astype(">u2")
    png_raw(p("i16_170x140.png"), 170, 140, 16, 0, [r.tobytes() for r in g16])
    rgb16 = (scene(100, 80).astype(np.uint16) * 257 + rng.integers(0, 256, (80, 100, 3)).astype(np.uint16)).astype(">u2")
    png_raw(p("rgb16_100x80.png"), 100, 80, 16, 2, [r.tobytes() for r in rgb16])
    la16 = (scene(120, 150, 2).astype(np.uint16) * 257).astype(">u2")
    png_raw(p("la16_120x150.png"), 120, 150, 16, 4, [r.tobytes() for r in la16])
    g4 = scene(130, 90, 1)[..., 0] >> 4
    png_raw(p("l4bit_130x90.png"), 130, 90, 4, 0,
            [bytes((r[i] << 4) | r[i + 1] for i in range(0, 130, 2)) for r in g4])
    # Palette of 4 colours but indices up to 255: PIL shows the grey ramp.
    idx = (scene(100, 80, 1)[..., 0] // 64 * 60).astype(np.uint8)
    idx[idx == 0] = 2
    png_raw(p("pshort_100x80.png"), 100, 80, 8, 3, [r.tobytes() for r in idx],
            plte=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]), trns=b"\x00\x80")
    # Sizes around n_px
    Image.fromarray(scene(100, 500)).save(p("tall_100x500.png"))
    Image.fromarray(scene(700, 90)).save(p("wide_700x90.png"))
    Image.fromarray(scene(50, 37)).save(p("small_50x37.png"))
    Image.fromarray(scene(224, 224)).save(p("exact_224x224.png"))
    Image.fromarray(scene(224, 300)).save(p("side_224x300.png"))
    Image.fromarray(scene(289, 288, 4), "RGBA").save(p("rgba_289x288.png"))
    Image.fromarray(scene(288, 288, 2), "LA").save(p("la_288x288.png"))
    Image.fromarray(scene(225, 401)).save(p("odd_225x401.png"))
    # GIF: colour palette, identity grey palette (PIL makes it mode L),
    # transparency.
    Image.fromarray(scene(210, 170)).quantize(64).save(p("p_210x170.gif"))
    Image.fromarray(scene(180, 120, 1)[..., 0], "L").save(p("grey_180x120.gif"), optimize=False)
    Image.fromarray(scene(120, 160)).quantize(32).save(p("trans_120x160.gif"), transparency=3)
    # BMP
    Image.fromarray(scene(120, 90)).save(p("rgb_120x90.bmp"))
    Image.fromarray(scene(170, 130, 1)[..., 0], "L").save(p("l_170x130.bmp"))
    Image.fromarray(scene(150, 110)).quantize(100).save(p("p_150x110.bmp"))
    # WebP, lossless and lossy (odd and even sizes, with and without alpha)
    Image.fromarray(scene(230, 170)).save(p("lossless_230x170.webp"), lossless=True)
    Image.fromarray(scene(230, 170, 4), "RGBA").save(p("lossless_rgba_230x170.webp"), lossless=True)
    Image.fromarray(scene(231, 171)).save(p("lossy_231x171.webp"), quality=80)
    Image.fromarray(scene(230, 170, 4), "RGBA").save(p("lossy_rgba_230x170.webp"), quality=80)


def clip_crop(n):
    return T.Compose([
        T.Resize(n, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(n),
        lambda im: im.convert("RGB"),
    ])


N288 = ("rgb420", "progressive", "cmyk", "rgba_", "i16", "p_260", "tall", "wide", "small",
        "exact", "la_288", "bit1", "grey_", "lossless_230")


def make_expected():
    cases = []
    for name in sorted(os.listdir(IN)):
        # n_px 288 (RN50x4) for a subset, to keep the reference files small.
        sizes = (224, 288) if any(name.startswith(k) for k in N288) else (224,)
        for n in sizes:
            with Image.open(os.path.join(IN, name)) as im:
                mode = im.mode
                crop = clip_crop(n)(im)
            assert crop.size == (n, n)
            want = f"{name}.{n}.png"
            crop.info.clear()  # no tRNS carried over from a transparent palette
            crop.save(os.path.join(WANT, want), optimize=True)
            cases.append({"input": name, "n_px": n, "mode": mode, "want": want})
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


def make_norm():
    # One 1x256 image holding every byte value in each channel.
    arr = np.stack([np.arange(256, dtype=np.uint8)] * 3, axis=-1)[None]
    t = T.Compose([T.ToTensor(), T.Normalize((0.48145466, 0.4578275, 0.40821073),
                                             (0.26862954, 0.26130258, 0.27577711))])
    out = t(Image.fromarray(arr, "RGB"))  # [3, 1, 256]
    assert out.dtype == torch.float32
    with open(os.path.join(HERE, "norm.bin"), "wb") as f:
        f.write(out.reshape(3, 256).numpy().astype("<f4").tobytes())


def make_errors():
    src = open(os.path.join(IN, "rgb420_640x480.jpg"), "rb").read()
    with open(os.path.join(ERR, "truncated.jpg"), "wb") as f:
        f.write(src[: len(src) // 2])
    with open(os.path.join(ERR, "random.bin"), "wb") as f:
        f.write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    open(os.path.join(ERR, "empty.jpg"), "wb").close()
    # A valid 64x64 JPEG whose SOF0 claims 30000x30000 pixels (9e8 > PIL's
    # 178956970-pixel DecompressionBombError limit).
    buf = io.BytesIO()
    Image.fromarray(scene(64, 64)).save(buf, "JPEG", quality=50)
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", 30000, 30000)
    with open(os.path.join(ERR, "bomb.jpg"), "wb") as f:
        f.write(bytes(b))
    png = open(os.path.join(IN, "rgb_333x251.png"), "rb").read()
    with open(os.path.join(ERR, "truncated.png"), "wb") as f:
        f.write(png[: len(png) * 2 // 3])
    # Check that PIL refuses each of them, as the Go tests expect.
    for name in sorted(os.listdir(ERR)):
        try:
            with Image.open(os.path.join(ERR, name)) as im:
                im.load()
        except Exception as e:  # noqa: BLE001 - any refusal is the point
            print(f"PIL refuses {name}: {type(e).__name__}: {e}")
        else:
            raise SystemExit(f"PIL accepted {name}")


make_inputs()
make_expected()
make_norm()
make_errors()
