"""Load test of `textrnn serve` on loopback: requests/s and latency percentiles, batching on vs off.

Starts `textrnn serve` in a subprocess on 127.0.0.1 (a free port) once with dynamic batching
(--max-batch 32) and once without (--max-batch 1), and at each concurrency sends a fixed number
of requests (bounded also in time) from aiohttp clients: one text per request, taken in turn
from a file, plus a share of bad requests (which must get their 4xx). Reports requests/s, p50 /
p95 / p99 latency of the good requests, and failures (a 5xx, a wrong status or a dropped
connection). The client is aiohttp (`pip install aiohttp`, the `bench` extra): httpx's async client
itself fell to 87 requests/s on GET /health at 128 connections here, where aiohttp made 968.

    python benchmarks/serve_load.py runs/sentiment --endpoint predict --texts corpora/sentiment/test.tsv
    python benchmarks/serve_load.py runs/translate --endpoint translate --option beam=5 \
        --texts corpora/translation/test.fr
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_texts(path: str, n: int) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if path.endswith(".tsv"):
        lines = [line.split("\t")[0] for line in lines[1:]]
    return [t for t in lines if t.strip()][:n]


def start(run: str, name: str, max_batch: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "textrnn",
        "serve",
        f"{name}={run}",
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--log-level",
        "warning",
        *extra,
    ]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return p, url
        except httpx.TransportError:
            time.sleep(0.1)
        if p.poll() is not None:
            raise SystemExit(f"the server exited: {p.stderr.read().decode()}")
    raise SystemExit("the server did not start in 60 s")


async def level(
    url: str, path: str, bodies: list[dict], bad: dict, bad_every: int, requests: int, concurrency: int, limit_s: float
) -> dict:
    """`requests` requests from `concurrency` clients (every `bad_every`-th one bad), stopping at `limit_s`."""
    lat: list[float] = []
    counts = {"good": 0, "bad_ok": 0, "failed": 0}
    nxt = 0
    t0 = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as client:

        async def worker():
            nonlocal nxt
            while nxt < requests and time.perf_counter() - t0 < limit_s:
                i = nxt
                nxt += 1
                is_bad = bad_every and i % bad_every == bad_every - 1
                body = bad if is_bad else bodies[i % len(bodies)]
                s = time.perf_counter()
                try:
                    async with client.post(path, json=body) as r:
                        status, data = r.status, await r.json()
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    counts["failed"] += 1
                    continue
                if is_bad:
                    counts["bad_ok" if 400 <= status < 500 and "error" in data else "failed"] += 1
                elif status == 200:
                    counts["good"] += 1
                    lat.append(time.perf_counter() - s)
                else:
                    counts["failed"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "concurrency": concurrency,
        "requests": counts["good"] + counts["bad_ok"] + counts["failed"],
        "rps": (counts["good"] + counts["bad_ok"]) / wall,
        "p50_ms": 1000 * q[49],
        "p95_ms": 1000 * q[94],
        "p99_ms": 1000 * q[98],
        **counts,
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--endpoint", required=True, choices=["predict", "translate", "complete"])
    ap.add_argument("--texts", required=True, help="a text file (one per line) or a .tsv with a text column")
    ap.add_argument("--option", action="append", default=[], help="request option NAME=VALUE (JSON value)")
    ap.add_argument("--concurrency", default="1,8,32,128")
    ap.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    ap.add_argument("--limit-s", type=float, default=60, help="time limit per level")
    ap.add_argument("--bad-share", type=float, default=0.1, help="share of bad requests (0 = none)")
    ap.add_argument("--batching", default="on,off")
    ap.add_argument("--max-wait-ms", type=float, default=5.0, help="the server's --max-wait-ms when batching")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    opts = {k: json.loads(v) for k, v in (o.split("=", 1) for o in a.option)}
    bodies = [{"texts": [t], **opts} for t in read_texts(a.texts, 1000)]
    bad = {"texts": ["x"], **opts, "beam": 0} if a.endpoint == "translate" else {"texts": [7]}
    bad_every = round(1 / a.bad_share) if a.bad_share else 0
    name = Path(a.run).name
    rows = []
    print(f"{a.endpoint} on {a.run} ({len(bodies)} texts; options {opts}); {os.cpu_count()} CPUs", flush=True)
    print(
        f"{'batching':>8} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failed':>6} "
        f"{'bad→4xx':>7}",
        flush=True,
    )
    for mode in a.batching.split(","):
        server, url = start(a.run, name, 32 if mode == "on" else 1, ["--max-wait-ms", str(a.max_wait_ms)])
        try:
            asyncio.run(level(url, f"/v1/models/{name}/{a.endpoint}", bodies[:20], bad, 0, 20, 4, 30))  # warm-up
            for c in map(int, a.concurrency.split(",")):
                r = asyncio.run(
                    level(url, f"/v1/models/{name}/{a.endpoint}", bodies, bad, bad_every, a.requests, c, a.limit_s)
                )
                r["batching"] = mode
                rows.append(r)
                print(
                    f"{mode:>8} {c:>7} {r['rps']:>8.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} {r['p99_ms']:>8.0f} "
                    f"{r['failed']:>6} {r['bad_ok']:>7}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(30)
    for c in sorted({r["concurrency"] for r in rows}):
        on = [r for r in rows if r["concurrency"] == c and r["batching"] == "on"]
        off = [r for r in rows if r["concurrency"] == c and r["batching"] == "off"]
        if on and off:
            print(f"clients {c}: batching on / off = {on[0]['rps'] / off[0]['rps']:.2f}x requests/s")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
