"""Generates the architecture-config fixtures for model/clip (run with
Debian's /usr/bin/python3 from this directory's parent or anywhere).

Two tiny ViT towers whose head count and activation tensor shapes cannot
tell (build_model would infer width/64 = 1 head and QuickGELU):

  heads4: width 64, 4 heads, QuickGELU, MLP 4*width (an OpenAI-style tower
          with a non-default head count)
    arch/heads4.safetensors          OpenAI names ("visual.*"), float32
    arch/hf_heads4/config.json       Hugging Face CLIPConfig (model_type "clip")
    arch/hf_heads4/model.safetensors CLIPModel names (vision_model.*, visual_projection)
  gelu:   width 64, 4 heads of 16, exact GELU, MLP ratio 1.5 (an
          OpenCLIP/LAION-style tower)
    arch/hf_gelu/config.json         CLIPVisionConfig (model_type "clip_vision_model")
    arch/hf_gelu/model.safetensors   CLIPVisionModelWithProjection names
    arch/openclip_gelu/open_clip_config.json    OpenCLIP hub config
    arch/openclip_gelu/open_clip_model.safetensors  OpenCLIP names (= OpenAI's)
  <tower>_in.bin / <tower>_out.bin   float32 inputs [B,3,32,32] and the
                                     PyTorch float32 embeddings [B,16]
  heads4_fp16_out.bin                only when CUDA is available: the tower run
                                     as clip.load does on CUDA (convert_weights,
                                     fp16 input), for the Go fp16 test
"""
import json
import os
import sys

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402  (the OpenAI-style modules and file writers)

OUT = os.path.join(HERE, "arch")


class GELUBlock(gen.Block):
    """ResidualAttentionBlock with a chosen MLP width and activation."""

    def __init__(self, d, heads, hidden, act):
        super().__init__(d, heads)
        self.mlp.c_fc = nn.Linear(d, hidden)
        self.mlp.gelu = act
        self.mlp.c_proj = nn.Linear(hidden, d)


def tower(heads, hidden, act):
    v = gen.ViT(32, 8, 64, 2, heads, 16)
    v.transformer.resblocks = nn.Sequential(*[GELUBlock(64, heads, hidden, act) for _ in range(2)])
    m = gen.FullCLIP(v, 16, 32).eval()
    gen.randomize(m)
    return m


def save(name, model, batch=3):
    x = torch.randn(batch, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
    gen.write_f32(os.path.join(OUT, name + "_in.bin"), x)
    gen.write_f32(os.path.join(OUT, name + "_out.bin"), want)
    sd = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("visual.")}
    print(name, tuple(want.shape), "norm", float(want.norm()))
    return sd, x


def write_dir(sub, files):
    d = os.path.join(OUT, sub)
    os.makedirs(d, exist_ok=True)
    for fname, content in files.items():
        p = os.path.join(d, fname)
        if isinstance(content, dict) and fname.endswith(".json"):
            with open(p, "w") as f:
                json.dump(content, f, indent=2)
                f.write("\n")
        else:
            gen.write_safetensors(p, content)


def fp16_reference(model, x):
    """clip.load on CUDA: build_model's convert_weights (conv, linear,
    attention and projection weights to fp16), the input in the model's
    dtype (encode_image: image.type(self.dtype)), LayerNorm in fp32."""
    m = model.visual.cuda()
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            mod.weight.data = mod.weight.data.half()
            if mod.bias is not None:
                mod.bias.data = mod.bias.data.half()
        if isinstance(mod, nn.MultiheadAttention):
            for a in ("in_proj_weight", "in_proj_bias"):
                getattr(mod, a).data = getattr(mod, a).data.half()
    m.proj.data = m.proj.data.half()
    m.class_embedding.data = m.class_embedding.data.half()
    m.positional_embedding.data = m.positional_embedding.data.half()

    for mod in m.modules():
        if isinstance(mod, nn.LayerNorm):  # clip/model.py's LayerNorm: fp32 inside, cast back
            f = mod.forward
            mod.forward = (lambda f: lambda t: f(t.float()).type(t.dtype))(f)
    with torch.no_grad():
        return m(x.cuda().half()).float().cpu()


def main():
    torch.manual_seed(4321)
    os.makedirs(OUT, exist_ok=True)

    m4 = tower(4, 256, gen.QuickGELU())
    sd, x4 = save("heads4", m4)
    gen.write_safetensors(os.path.join(OUT, "heads4.safetensors"), sd)
    hf = gen.hf_names(sd, 2)
    write_dir("hf_heads4", {
        "config.json": {"model_type": "clip", "projection_dim": 16,
                        "vision_config": {"hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 4,
                                          "num_hidden_layers": 2, "image_size": 32, "patch_size": 8,
                                          "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05}},
        "model.safetensors": hf,
    })

    mg = tower(4, 96, nn.GELU())
    sd, _ = save("gelu", mg)
    hf = {k: v for k, v in gen.hf_names(sd, 2).items() if not k.startswith(("text_", "logit"))}
    write_dir("hf_gelu", {
        "config.json": {"model_type": "clip_vision_model", "hidden_size": 64, "intermediate_size": 96,
                        "num_attention_heads": 4, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8,
                        "projection_dim": 16, "hidden_act": "gelu"},
        "model.safetensors": hf,
    })
    write_dir("openclip_gelu", {
        "open_clip_config.json": {"model_cfg": {"embed_dim": 16, "vision_cfg": {
            "image_size": 32, "layers": 2, "width": 64, "head_width": 16, "mlp_ratio": 1.5, "patch_size": 8}}},
        "open_clip_model.safetensors": sd,
    })

    if torch.cuda.is_available():
        gen.write_f32(os.path.join(OUT, "heads4_fp16_out.bin"), fp16_reference(m4, x4))
    else:
        print("no CUDA: heads4_fp16_out.bin not written (the Go fp16 test then compares with the fp32 output)")


if __name__ == "__main__":
    main()
