"""PyTorch peer for Pictor's model benchmarks (bench/Pictor.Bench ModelBench): same models (tools/reference/models.py),
same shapes, synthetic data, float32, torch.set_num_threads(THREADS). Prints the same table columns.

    OMP_NUM_THREADS=2 /usr/bin/python3 tools/reference/bench_peer.py [iters]
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import models  # noqa: E402

threads = int(os.environ.get("PICTOR_THREADS", "2"))
torch.set_num_threads(threads)
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.manual_seed(0)


def report(name, items, unit, n, f):
    f()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    med = ts[len(ts) // 2]
    print(f"| {name} | {med * 1000:.0f} ms | {items / med:.1f} {unit}/s |", flush=True)


print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} threads, median of {iters}")
print("| benchmark | time | throughput |")
print("|---|---|---|")

unet = models.UNetS()
opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
B = 32
x, eps, ctx = torch.randn(B, 3, 32, 32), torch.randn(B, 3, 32, 32), torch.randn(B, 16, 256)
t = torch.randint(0, 1000, (B,)).float()


def unet_step():
    opt.zero_grad(set_to_none=True)
    F.mse_loss(unet(x, t, ctx), eps).backward()
    opt.step()


report(f"UNet-S train step, batch {B}", B, "images", iters, unet_step)


def unet_sample(batch, steps, cfg):
    b = 2 * batch if cfg else batch
    xs, cs = torch.randn(b, 3, 32, 32), torch.randn(b, 16, 256)

    def run():
        with torch.no_grad():
            for s in range(steps):
                unet(xs, torch.full((b,), 999.0 - s * 1000.0 / steps), cs)
    return run


report("UNet-S sampling, 50 denoiser calls, batch 16", 16, "images", max(3, iters // 3), unet_sample(16, 50, False))
report("UNet-S sampling, 50 denoiser calls, batch 16 with CFG", 16, "images", max(3, iters // 3), unet_sample(16, 50, True))

ar = models.ArS()
opt2 = torch.optim.AdamW(ar.parameters(), lr=1e-4)
ids = torch.cat([torch.randint(0, 4096, (64, 16)), 4096 + torch.randint(0, 512, (64, 64))], 1)


def ar_step():
    opt2.zero_grad(set_to_none=True)
    ar.loss(ids).backward()
    opt2.step()


report("AR-S train step, batch 64", 64 * 79, "tokens", iters, ar_step)
