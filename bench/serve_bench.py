#!/usr/bin/env python3
"""Load benchmark for `pictor serve` (bench/RESULTS.md, "Server"): closed-loop clients on 127.0.0.1 at 1x, 2x and 4x
the server's capacity (workers + queue). Each client sends a generation, waits for the answer, and on a 429 sleeps
min(Retry-After, 0.2 s) and sends again. Prints images/s, p50/p95 latency of the answered requests, the 429 count,
and the server's overhead per image: end-to-end latency of a lone client minus the library call's own time, which the
server reports in Server-Timing (generate;dur=).

    ./pictor serve --port 8190 --workers 1 --queue 1 &
    python3 bench/serve_bench.py --port 8190 --capacity 2 --requests 24
"""
import argparse, json, statistics, threading, time, urllib.error, urllib.request


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            r.read()
            timing = r.headers.get("Server-Timing", "")
            gen = float(timing.split("generate;dur=")[1]) / 1000 if "generate;dur=" in timing else None
            return 200, time.perf_counter() - t, gen, 0
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, time.perf_counter() - t, None, int(e.headers.get("Retry-After", "1"))


def run(url, clients, total, body):
    lock, results, sent = threading.Lock(), [], [0]

    def client(i):
        while True:
            with lock:
                if sent[0] >= total:
                    return
                sent[0] += 1
                seed = sent[0]
            while True:
                status, latency, gen, retry = post(url, dict(body, seed=seed))
                with lock:
                    results.append((status, latency, gen))
                if status != 429:
                    break
                time.sleep(min(retry, 0.2))

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - start
    ok = sorted(r[1] for r in results if r[0] == 200)
    q = statistics.quantiles(ok, n=20) if len(ok) >= 2 else [ok[0]] * 19
    return dict(clients=clients, answered=len(ok), refused=sum(r[0] == 429 for r in results),
                other=sum(r[0] not in (200, 429) for r in results), wall=wall, images_per_s=len(ok) / wall,
                p50=statistics.median(ok), p95=q[18], results=results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8190)
    ap.add_argument("--capacity", type=int, default=2, help="the server's workers + queue")
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--model", default="emoji")
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    url = f"http://127.0.0.1:{a.port}/v1/images/generations"
    body = {"prompt": "grinning face, noto style", "model": a.model, "steps": a.steps}
    for _ in range(3): post(url, body)   # warm-up: first calls compile the kernels
    lone = run(url, 1, a.requests, body)
    pairs = [(lat, gen) for s, lat, gen in lone["results"] if s == 200 and gen is not None]
    lib = statistics.mean(g for _, g in pairs)
    e2e = statistics.mean(l for l, _ in pairs)
    print(f"lone client: {len(pairs)} images, end-to-end {e2e * 1000:.1f} ms, library call {lib * 1000:.1f} ms, "
          f"server overhead {(e2e - lib) * 1000:.1f} ms per image ({(e2e - lib) / lib * 100:.1f} %)")
    print("| load | clients | answered | 429s | images/s | p50 latency | p95 latency |")
    print("|---|---|---|---|---|---|---|")
    for k in (1, 2, 4):
        r = run(url, k * a.capacity, a.requests, body)
        print(f"| {k}x | {r['clients']} | {r['answered']} | {r['refused']} | {r['images_per_s']:.2f} | "
              f"{r['p50'] * 1000:.0f} ms | {r['p95'] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
