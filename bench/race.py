"""Alternating race: Pictor (bench/Pictor.Bench serve ROW) against PyTorch (tools/reference/bench_peer.py --serve ROW)
on the same workloads, same thread count, one iteration each in turn after warm-up, so drift in the machine's speed
hits both sides alike. Prints a markdown table: medians, the speed ratio (PyTorch time / Pictor time; > 1 means Pictor
is faster), items/s, GEMM FLOPs per item (counted by Pictor) and achieved GFLOP/s, and the peak RSS of each process.

    python3 bench/race.py [--iters 10] [--warmup 2] [--threads 2] [--rows unet-train,ar-train,...] [--processes N]
bench/run.sh calls this twice: with OPENBLAS_CORETYPE as the environment sets it, and unset.

--processes N starts N processes per side and races the fastest of each: a process's speed can depend on where its
memory and threads landed (the PyTorch peer's AR-S sampling ran about 0.65 s or about 0.9 s a call, fixed for the life
of the process; bench/RESULTS.md), so best-of-N gives each side its best configuration. By default AR-S sampling, the
row where that was seen and whose calls take under a second, starts 4 a side; the other rows 1.
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = {
    "unet-train": ("UNet-S train step (fwd+bwd+AdamW), batch 32", "images", 1.3),
    "unet-ddim": ("UNet-S sampling, DDIM 50 steps, batch 16", "images", 1.3),
    "unet-ddim-cfg": ("UNet-S sampling, DDIM 50 steps, batch 16, CFG", "images", 1.3),
    "ar-train": ("AR-S train step, batch 64", "tokens", 1.0),
    "ar-sample": ("AR-S sampling 64 image tokens, batch 16, KV cache", "tokens", 1.5),
}

DEFAULT_PROCESSES = {"ar-sample": 4}


class Side:
    def __init__(self, name, cmd, env):
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        line = self.p.stdout.readline().strip()
        if not line.startswith("ready"):
            raise SystemExit(f"{name} did not start: {line!r} (stderr above)")

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        if not line or line.startswith("error"):
            raise SystemExit(f"{self.name}: {line!r}")
        return line

    def run(self):
        ms, items, flops = self.ask("run").split()
        return float(ms), int(items), int(flops)

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=60)


def start(name, cmd, env, n, warmup):
    """Starts n processes of one side, warms each up, times each over two more calls (the better one counts) and keeps
    the fastest; returns it and the per-process times, so the output shows how far the processes differ."""
    sides = [Side(name, cmd, env) for _ in range(n)]
    if n == 1:
        return sides[0], []
    times = []
    for s in sides:
        for _ in range(warmup):
            s.run()
        times.append(min(s.run()[0] for _ in range(2)))
    best = min(range(n), key=lambda i: times[i])
    for i, s in enumerate(sides):
        if i != best:
            s.close()
    return sides[best], times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--processes", type=int, default=None, help="processes per side; the fastest of each races (default: 4 for ar-sample, else 1)")
    ap.add_argument("--peak-gflops", type=float, default=0, help="measured SGEMM peak, for the fraction column")
    a = ap.parse_args()
    if a.processes is not None and a.processes < 1:
        raise SystemExit(f"--processes must be at least 1, got {a.processes}")
    env = dict(os.environ)
    t = str(a.threads)
    # Each side gets its best configuration: the thread count everywhere, OpenMP threads that spin briefly and then
    # sleep (PyTorch's default with its own pool), OpenBLAS limited to the same count.
    env.update(PICTOR_THREADS=t, OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t)
    # OMP_WAIT_POLICY=PASSIVE: the peer's best measured setting (10 UNet-S no-grad calls, batch 16: PASSIVE 1.1 s a call,
    # default 1.2 s, ACTIVE 1.8 s; bench/RESULTS.md). ACTIVE would also spin on a core while Pictor runs its turn.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # glibc malloc without mmap'd large blocks and without trimming: PyTorch frees and reallocates its activations every
    # call, and with the defaults every large one comes back as fresh zeroed pages (10 no-grad UNet-S calls, batch 16:
    # 0.43 s a call against 1.0 s; bench/RESULTS.md). .NET's GC does not use malloc, so Pictor is unaffected.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 32))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(1 << 32))
    dll = os.path.join(ROOT, "bench/Pictor.Bench/bin/Release/net10.0/Pictor.Bench.dll")
    peer = os.path.join(ROOT, "tools/reference/bench_peer.py")
    core = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    print(f"\n### OPENBLAS_CORETYPE={core}, {a.threads} threads, OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}, MALLOC_MMAP_THRESHOLD_={env['MALLOC_MMAP_THRESHOLD_']}, median of {a.iters} alternating iterations after {a.warmup} warm-up each"
          + (f", the fastest of {a.processes} processes per side" if a.processes else ", the fastest of 4 processes per side for AR-S sampling") + "\n")
    print("| row | Pictor | PyTorch | speed ratio | target | Pictor items/s | GEMM FLOP/item | Pictor GFLOP/s | peak RSS Pictor / PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in a.rows.split(","):
        title, unit, target = ROWS[row]
        n = a.processes or DEFAULT_PROCESSES.get(row, 1)
        me, my_times = start("Pictor", ["dotnet", dll, "serve", row], env, n, a.warmup)
        them, their_times = start("PyTorch", ["/usr/bin/python3", peer, "--serve", row], env, n, a.warmup)
        if n > 1:
            print(f"  {row} processes (best of 2 calls each, ms): Pictor {', '.join(f'{t:.0f}' for t in my_times)}; "
                  f"PyTorch {', '.join(f'{t:.0f}' for t in their_times)}", file=sys.stderr, flush=True)
        mine, theirs, flops, items = [], [], 0, 1
        for i in range(a.warmup + a.iters):
            ms, items, f = me.run()
            pt, _, _ = them.run()
            print(f"  {row} {'warm-up' if i < a.warmup else 'iteration'} {i + 1}: Pictor {ms:.0f} ms, PyTorch {pt:.0f} ms", file=sys.stderr, flush=True)
            if i >= a.warmup:
                mine.append(ms)
                theirs.append(pt)
                flops = f
        rss_me, rss_them = int(me.ask("rss")), int(them.ask("rss"))
        me.close()
        them.close()
        m, p = statistics.median(mine), statistics.median(theirs)
        ratio = p / m
        gfs = flops / (m / 1000) / 1e9
        frac = f" ({gfs / a.peak_gflops:.2f} of peak)" if a.peak_gflops > 0 else ""
        ok = "met" if ratio >= target else "not met"
        print(f"| {title} | {m:.0f} ms | {p:.0f} ms | {ratio:.2f} | >= {target} {ok} | {items / (m / 1000):.1f} {unit}/s | "
              f"{flops / items / 1e9:.3f} G | {gfs:.1f}{frac} | {rss_me / 1024:.0f} / {rss_them / 1024:.0f} MiB ({rss_me / rss_them:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
