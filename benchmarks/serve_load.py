"""Load on ``singleshot serve``: a bounded number of ``POST /detect`` requests at each concurrency, then throughput,
p50/p99 latency and errors.

Starts ``singleshot serve`` on a free port of 127.0.0.1 (or uses ``--url`` of a running server), waits for
``/health``, sends ``--warmup`` requests, then for each concurrency ``--requests`` uploads of ``--image`` with
that many in flight at once (asyncio + httpx, one connection per in-flight request). Latency is per request, from
sending to the full answer; a 503 (queue full) and any other non-200 count as errors, by status. Prints a markdown
table and one JSON line last: ``{"levels": [{"concurrency", "requests", "throughput_rps", "p50_ms", "p99_ms",
"errors"}, ...], ...}``.
Usage: python benchmarks/serve_load.py [--requests 2000] [--concurrency 1,4,16] [--workers 1] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from common import emit

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """``singleshot serve`` in a child process on a free port; returns it and its URL once /health answers."""
    port = _free_port()
    command = [sys.executable, "-m", "singleshot.cli", "serve", "--port", str(port), "--workers", str(args.workers),
               "--max-queue", str(args.max_queue)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.weights:
        command += ["--weights", args.weights]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"singleshot serve exited with {server.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("singleshot serve did not answer /health within 300 s")


async def run_level(url: str, data: bytes, name: str, requests: int, concurrency: int, query: str) -> dict:
    """``requests`` uploads with ``concurrency`` in flight; latencies (ms) and statuses."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one_client() -> None:
            for _ in remaining:  # shared iterator: each request is sent exactly once, by whichever client is free
                start = time.perf_counter()
                try:
                    answer = await client.post(f"/detect{query}", files={"image": (name, data, "image/jpeg")})
                    statuses[answer.status_code] += 1
                except httpx.HTTPError as err:
                    statuses[type(err).__name__] += 1
                latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    errors = {str(k): v for k, v in statuses.items() if k != 200}
    return {
        "concurrency": concurrency, "requests": requests, "seconds": round(elapsed, 2),
        "throughput_rps": round(requests / elapsed, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2), "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "errors": sum(errors.values()), "errors_by_status": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start singleshot serve on a free port)")
    parser.add_argument("--image", default=str(ROOT / "assets" / "demo.jpg"), help="photo uploaded (the demo)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level (2000)")
    parser.add_argument("--concurrency", default="1,4,16", help="levels, comma-separated (1,4,16)")
    parser.add_argument("--warmup", type=int, default=20, help="requests sent first, not counted (20)")
    parser.add_argument("--attributes", default="", help="e.g. smile: also score attributes")
    parser.add_argument("--weights", help="started server: checkpoint or .onnx (default: the bundled model)")
    parser.add_argument("--workers", type=int, default=1, help="started server: inference threads (1)")
    parser.add_argument("--threads", type=int, default=None, help="started server: ONNX Runtime threads per worker")
    parser.add_argument("--max-queue", type=int, default=32, help="started server: queue limit (32)")
    args = parser.parse_args()
    levels = [int(v) for v in args.concurrency.split(",")]
    data = Path(args.image).read_bytes()
    query = f"?attributes={args.attributes}" if args.attributes else ""
    server = None
    url = args.url
    if url is None:
        server, url = start_server(args)
    try:
        asyncio.run(run_level(url, data, Path(args.image).name, args.warmup, 1, query))
        results = []
        for c in levels:
            results.append(asyncio.run(run_level(url, data, Path(args.image).name, args.requests, c, query)))
            print(f"concurrency {c}: {results[-1]['throughput_rps']} req/s", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print("| concurrency | requests | throughput (req/s) | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['concurrency']} | {r['requests']} | {r['throughput_rps']:.1f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['errors']} {r['errors_by_status'] or ''} |")
    emit({"url": url, "image": Path(args.image).name, "workers": args.workers, "threads": args.threads,
          "cpus": os.cpu_count(), "levels": results})


if __name__ == "__main__":
    main()
