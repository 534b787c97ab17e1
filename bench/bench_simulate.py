"""Speed and memory of the store simulator.

Times ``simulate_store`` on the demo size (5,000 customers x 2 years, best of 3), then
generates a large store in chunks with ``iter_simulated_chunks`` (default 1M customers,
events included) and extrapolates linearly to 10M; ``--full`` generates the 10M for real.
Peak memory is the process's maximum resident set size, bounded by one chunk.

Prints a markdown snippet and writes it to ``bench/out/simulate.md``.

Usage: ``python bench/bench_simulate.py [--customers 1000000] [--chunk-size 500000] [--full]``
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

from ltvcast.data.synthetic import iter_simulated_chunks, simulate_store

OUT = Path(__file__).resolve().parent / "out" / "simulate.md"
TARGET = 10_000_000


def peak_rss_gib() -> float:
    """Maximum resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=500_000)
    parser.add_argument("--full", action="store_true", help=f"generate {TARGET:,} customers")
    args = parser.parse_args()
    customers = TARGET if args.full else args.customers

    small = []
    for seed in range(3):
        start = time.perf_counter()
        store = simulate_store(5000, random_state=seed)
        small.append(time.perf_counter() - start)
    small_rows = (len(store.transactions), len(store.events))

    start, cpu_start = time.perf_counter(), time.process_time()
    n_tx = n_ev = 0
    chunk_seconds = []
    for chunk in iter_simulated_chunks(customers, chunk_size=args.chunk_size, random_state=0):
        n_tx += len(chunk.transactions)
        n_ev += len(chunk.events)
        chunk_seconds.append(time.perf_counter() - start - sum(chunk_seconds))
        del chunk
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    scale = TARGET / customers
    extrapolated = "measured" if customers >= TARGET else "extrapolated (linear)"

    lines = [
        "## Store simulator",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        "",
        "| run | customers | transactions | events | wall s | CPU s | peak RSS (GiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| `simulate_store` (2 years, best of 3) | 5,000 | {small_rows[0]:,} | "
        f"{small_rows[1]:,} | {min(small):.2f} | | |",
        f"| `iter_simulated_chunks` (chunks of {args.chunk_size:,}) | {customers:,} | "
        f"{n_tx:,} | {n_ev:,} | {total:.1f} | {cpu:.1f} | {peak_rss_gib():.2f} |",
        f"| 10M customers, {extrapolated} | {TARGET:,} | ~{n_tx * scale:,.0f} | "
        f"~{n_ev * scale:,.0f} | {total * scale:.0f} | {cpu * scale:.0f} | "
        f"{peak_rss_gib():.2f} (one chunk) |",
        "",
        f"Per chunk (wall): {', '.join(f'{s:.1f}s' for s in chunk_seconds)}. Memory is bounded "
        "by one chunk (ids, order ids and session ids are unique across chunks). Wall time "
        "above CPU time means other processes shared the cores.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)


if __name__ == "__main__":
    main()
