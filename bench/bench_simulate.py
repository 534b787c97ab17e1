"""Speed and memory of the store simulator.

Times ``simulate_store`` on the demo size (5,000 customers x 2 years, best of 3), then
generates a large store in chunks with ``iter_simulated_chunks`` (default 1M customers,
events included) and extrapolates linearly to 10M; ``--full`` generates the 10M for real.
Then writes the same number of customers to files with ``write_simulated_store`` (CSV and
Parquet, each in a fresh process so that its peak memory is its own; ``--formats ""``
skips it). Peak memory is the process's maximum resident set size, bounded by one chunk.

Prints a markdown snippet and writes it to ``bench/out/simulate.md``.

Usage: ``python bench/bench_simulate.py [--customers 1000000] [--chunk-size 500000]
[--write-chunk-size 100000] [--formats csv,parquet] [--full]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ltvcast.data.synthetic import iter_simulated_chunks, simulate_store, write_simulated_store

from protocols import write_section

OUT = Path(__file__).resolve().parent / "out" / "simulate.md"
TARGET = 10_000_000


def peak_rss_gib() -> float:
    """Maximum resident set size of this process so far (Linux's VmHWM, in KiB).

    Unlike ``ru_maxrss``, which a child process inherits from its parent, VmHWM is the
    process's own peak.
    """
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 2**20


def timed_write(customers: int, chunk_size: int, fmt: str) -> dict[str, float]:
    """Write a store to a temporary folder; wall and CPU seconds, peak RSS, GB written."""
    with tempfile.TemporaryDirectory() as out:
        start, cpu_start = time.perf_counter(), time.process_time()
        fmt_ = "csv" if fmt == "csv" else "parquet"
        paths = write_simulated_store(out, customers, chunk_size=chunk_size, fmt=fmt_)
        return {
            "wall": time.perf_counter() - start,
            "cpu": time.process_time() - cpu_start,
            "rss": peak_rss_gib(),
            "gb": sum(p.stat().st_size for p in paths.values()) / 1e9,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=500_000)
    parser.add_argument("--write-chunk-size", type=int, default=100_000)
    parser.add_argument("--formats", default="csv,parquet", help="files to write; '' for none")
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
    generated_rss = peak_rss_gib()
    written = {}
    for fmt in filter(None, args.formats.split(",")):
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:  # a fresh process: its own peak
            written[fmt] = pool.submit(timed_write, customers, args.write_chunk_size, fmt).result()
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
        f"{n_tx:,} | {n_ev:,} | {total:.1f} | {cpu:.1f} | {generated_rss:.2f} |",
        f"| 10M customers, {extrapolated} | {TARGET:,} | ~{n_tx * scale:,.0f} | "
        f"~{n_ev * scale:,.0f} | {total * scale:.0f} | {cpu * scale:.0f} | "
        f"{generated_rss:.2f} (one chunk) |",
        *(
            f"| `write_simulated_store`, {fmt} ({w['gb']:.2f} GB; chunks of "
            f"{args.write_chunk_size:,}) | {customers:,} | | | "
            f"{w['wall']:.1f} | {w['cpu']:.1f} | {w['rss']:.2f} |"
            for fmt, w in written.items()
        ),
        "",
        f"Per chunk (wall): {', '.join(f'{s:.1f}s' for s in chunk_seconds)}. Memory is bounded "
        "by one chunk (ids, order ids and session ids are unique across chunks). Writing "
        "simulates a store of the same size again, in its own chunks (a draw of about the "
        "same rows), and writes each table to one file; each format runs in a fresh process "
        "and its peak RSS is that process's own. Wall time above CPU time means other "
        "processes shared the cores.",
    ]
    text = "\n".join(lines) + "\n"
    write_section(text, OUT)


if __name__ == "__main__":
    main()
