#!/usr/bin/python3
"""PyTorch's own DistributedDataParallel on BenchmarkDataParallel's setting.

The reference for clipcap's data-parallel row of scripts/bench.sh: the same
model (MLP mapper from a 16-d feature, prefix 4, GPT-2 of n_embd 256 x 4
layers x 4 heads, vocab 257, dropout 0.1, all of it trained), the same
per-worker batch (32 captions of 12-15 byte tokens), one thread a process,
gloo over loopback, DDP's defaults (25 MiB buckets, overlap with backward)
plus gradient_as_bucket_view. Samples/s of 1 process, of 1 process pinned
to one core, and of 2 DDP processes pinned to a core each, all in one run.

  bench_ddp.py [steps]     one JSON line: samples/s and the speed-up
"""
import json, os, socket, sys, time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import GPT2, MLP, ClipCap, pad  # noqa: E402

VOCAB, E, LAYERS, HEADS, L, CLIP_DIM, BS = 257, 256, 4, 4, 4, 16, 32
WARMUP = 5  # steps left out of the timing


def batches(rank, steps):
    g = torch.Generator().manual_seed(100 + rank)
    out = []
    for _ in range(steps):
        lens = torch.randint(12, 16, (BS,), generator=g).tolist()
        caps = [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in lens]
        out.append((torch.randn(BS, CLIP_DIM, generator=g), caps))
    return out


def run(rank, world, port, steps, pin, result):
    torch.set_num_threads(1)
    if pin:
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    torch.manual_seed(0)
    model = ClipCap(GPT2(VOCAB, 64, E, LAYERS, HEADS, 0.1), MLP((CLIP_DIM, E * L // 2, E * L)), L, E)
    if world > 1:
        os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = DDP(model, gradient_as_bucket_view=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
    model.train()
    data = batches(rank, steps)
    begin = None
    for i, (emb, caps) in enumerate(data):
        if i == WARMUP:
            begin = time.perf_counter()
        tokens, mask = pad(caps, 16, L)
        logits = model(tokens, emb, mask)[:, L - 1:-1]
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens.flatten(), ignore_index=0)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
    elapsed = time.perf_counter() - begin
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    if rank == 0:
        result.put(BS * world * (steps - WARMUP) / elapsed)


def samples_per_s(world, steps, pin):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    result = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, world, port, steps, pin, result)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"worker exited with {p.exitcode}")
    return result.get()


if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    one_free = samples_per_s(1, steps, False)
    one_pinned = samples_per_s(1, steps, True)
    two = samples_per_s(2, steps, True)
    one = max(one_free, one_pinned)
    print(json.dumps({"impl": "pytorch-ddp", "bs_per_worker": BS, "one_worker": one, "one_pinned": one_pinned,
                      "one_free": one_free, "two_workers": two, "speedup": two / one}))
