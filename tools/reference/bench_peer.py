"""PyTorch peer for Pictor's model benchmarks (bench/Pictor.Bench ModelBench): same models (tools/reference/models.py),
same shapes, synthetic data, float32, torch.set_num_threads(THREADS). Prints the same table columns.

    OMP_NUM_THREADS=2 /usr/bin/python3 tools/reference/bench_peer.py [iters]
    /usr/bin/python3 tools/reference/bench_peer.py --serve ROW      (bench/race.py drives this)
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import models  # noqa: E402

threads = int(os.environ.get("PICTOR_THREADS", "2"))
torch.set_num_threads(threads)
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




def table(iters):
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


# ------------------------------------------------------------------------------------------------ race server
# bench/race.py alternates this with `Pictor.Bench serve ROW`: same rows, same protocol ("run" -> "ms items flops",
# "rss" -> peak RSS KiB, "quit"). flops is printed as 0: PyTorch does not count them; the runner uses Pictor's count.

def cosine_abar(T=1000, s=0.008):
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    abar, prev = [], 1.0
    for t in range(T):
        beta = min(1 - f((t + 1) / T) / f(t / T), 0.999)
        prev *= 1 - beta
        abar.append(prev)
    return abar


def ddim(model, xT, ctx, steps, cfg):
    abar = cosine_abar()
    T = len(abar)
    ts = [round(T - i * T / steps) - 1 for i in range(steps)]
    x, b = xT.clone(), xT.shape[0]
    with torch.no_grad():
        for i, t in enumerate(ts):
            xin = torch.cat([x, x]) if cfg else x
            out = model(xin, torch.full((xin.shape[0],), float(t)), ctx)
            eps = out[b:] + 3.0 * (out[:b] - out[b:]) if cfg else out
            ab = abar[t]
            ab_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


def ar_sample_cached(ar, prompt, count, top_k=64, text_vocab=4096):
    """KV-cached decoding: the prompt once, then one position per step through each block's cache."""
    B = prompt.shape[0]
    caches = [None] * len(ar.blocks)
    seq = prompt
    g = torch.Generator().manual_seed(6)

    def step(ids, start):
        x = ar.tok_emb(ids) + ar.pos_emb[start:start + ids.shape[1]]
        for i, blk in enumerate(ar.blocks):
            a, h = blk.attn, blk.ln1(x)
            T = h.shape[1]
            q = a.q(h).view(B, T, a.heads, a.hd).transpose(1, 2)
            k = a.k(h).view(B, T, a.heads, a.hd).transpose(1, 2)
            v = a.v(h).view(B, T, a.heads, a.hd).transpose(1, 2)
            if caches[i] is not None:
                k = torch.cat([caches[i][0], k], 2)
                v = torch.cat([caches[i][1], v], 2)
            caches[i] = (k, v)
            S = k.shape[2]
            s = q @ k.transpose(-1, -2) / math.sqrt(a.hd)
            if T > 1:
                s = s.masked_fill(torch.ones(T, S, dtype=torch.bool).triu(1 + S - T), float("-inf"))
            o = torch.softmax(s, -1) @ v
            x = x + a.out(o.transpose(1, 2).reshape(B, T, a.heads * a.hd))
            x = x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(blk.ln2(x))))
        return ar.head(ar.ln_f(x[:, -1]))

    with torch.no_grad():
        logits = step(seq, 0)
        for n in range(count):
            lg = logits[:, text_vocab:]
            kth = torch.topk(lg, top_k, -1).values[:, -1:]
            lg = lg.masked_fill(lg < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(lg, -1), 1, generator=g) + text_vocab
            seq = torch.cat([seq, nxt], 1)
            if n + 1 < count:
                logits = step(nxt, seq.shape[1] - 1)
    return seq


def build(row):
    g = torch.Generator().manual_seed(2)
    if row == "unet-train":
        m = models.UNetS()
        o = torch.optim.AdamW(m.parameters(), lr=1e-4)
        x, e, c = torch.randn(32, 3, 32, 32, generator=g), torch.randn(32, 3, 32, 32, generator=g), torch.randn(32, 16, 256, generator=g)
        t = torch.randint(0, 1000, (32,), generator=g).float()

        def run():
            o.zero_grad(set_to_none=True)
            F.mse_loss(m(x, t, c), e).backward()
            o.step()
        return 32, run
    if row in ("unet-ddim", "unet-ddim-cfg"):
        cfg = row.endswith("cfg")
        m = models.UNetS()
        xT = torch.randn(16, 3, 32, 32, generator=g)
        c = torch.randn(32 if cfg else 16, 16, 256, generator=g)
        return 16, lambda: ddim(m, xT, c, 50, cfg)
    if row == "ar-train":
        m = models.ArS()
        o = torch.optim.AdamW(m.parameters(), lr=1e-4)
        ids = torch.cat([torch.randint(0, 4096, (64, 16), generator=g), 4096 + torch.randint(0, 512, (64, 64), generator=g)], 1)

        def run():
            o.zero_grad(set_to_none=True)
            m.loss(ids).backward()
            o.step()
        return 64 * 79, run
    if row == "ar-sample":
        m = models.ArS()
        prompt = torch.randint(0, 4096, (16, 16), generator=g)
        return 16 * 64, lambda: ar_sample_cached(m, prompt, 64)
    raise SystemExit(f"unknown race row '{row}'")


def peak_rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def serve(row):
    items, run = build(row)
    print(f"ready {row}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            t0 = time.perf_counter()
            run()
            print(f"{(time.perf_counter() - t0) * 1000:.3f} {items} 0", flush=True)
        elif cmd == "rss":
            print(peak_rss_kib(), flush=True)
        elif cmd == "quit":
            return
        else:
            print(f"error unknown command '{cmd}'", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        iters = int(sys.argv[1]) if len(sys.argv) > 1 else 10
        table(iters)
