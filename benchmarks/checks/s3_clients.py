"""CPU of making the fluent check's S3 client, once per cluster: one shared ``aioboto3.Session`` per event
loop (what ``kibertas_async_fluent.s3`` does) against a new session for every client (what it did before).

Usage: .venv/bin/python benchmarks/checks/s3_clients.py [--clients 6] [--repeat 5]

No S3 is contacted: each client is opened and closed (``async with LogBucket(...)``), which is where botocore
builds its event hooks, loads the S3 model and the endpoint rules. Each figure is the median over
``--repeat`` fresh event loops, process CPU (user+system) from ``time.process_time``; botocore's own
module imports are paid before the first measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from kibertas_async_fluent import s3


async def open_clients(count: int, *, shared: bool) -> list[float]:
    """CPU seconds of each of ``count`` clients, opened and closed one after another."""
    settings = s3.S3Settings(bucket="logs", endpoint_url="http://127.0.0.1:9", region="us-east-1", path_style=True,
                             access_key_id="AKIABENCHMARK", secret_access_key="benchmark")  # fmt: skip
    spent = []
    for _ in range(count):
        if not shared:
            s3._SESSIONS.clear()  # a new session for this client, as before
        started = time.process_time()
        async with s3.LogBucket(settings):
            pass
        spent.append(time.process_time() - started)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(open_clients(1, shared=False))  # imports aioboto3 and botocore, untimed
    print(f"load average at start: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    print("| sessions | first client | each further client (median) | all clients |")
    print("|---|---|---|---|")
    for shared in (False, True):
        runs = [asyncio.run(open_clients(args.clients, shared=shared)) for _ in range(args.repeat)]
        first = statistics.median(run[0] for run in runs)
        further = statistics.median(value for run in runs for value in run[1:])
        total = statistics.median(sum(run) for run in runs)
        label = "one per loop (now)" if shared else "one per client (before)"
        print(f"| {label} | {first * 1000:.0f} ms | {further * 1000:.0f} ms | {total * 1000:.0f} ms |")
    print(f"load average at end: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
