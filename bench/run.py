"""Run every benchmark and write bench/results.md (and the README's results block).

Usage::

    python bench/run.py                      # everything
    python bench/run.py --protocols cdnow_13w --models btyd,lifetimes
    python bench/run.py --skip-extra         # only the accuracy protocols
    python bench/run.py --full               # everything, with the 10M-customer curve

Each (protocol, model) pair runs in its own process (bench/_one.py) so that its peak memory
is its own. Rows are kept in bench/results.json; a partial run replaces only the rows it
measured (each row records when), and results.md is rebuilt from all of them.
The extra benchmarks (simulator scale, seq model speed, service load, value intervals,
profile covariates, next best items, whole processes by store size; the service at 1M
customers is ``bench_service.py --scale``) are separate scripts whose markdown lands in
bench/out/ and is appended here; ``--full`` also runs the curve up to 10M customers
(:data:`FULL_ONLY`; without it its last output is appended).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from protocols import PROTOCOLS, replace_readme_block

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODELS = (
    "baseline", "tenure_mean", "btyd", "btyd_cal", "pnbd", "bgcnbd", "mbgcnbd", "gbdt", "seq",
    "auto", "lifetimes", "lifetimes_pnbd", "plain_lgbm",
)  # fmt: skip
SHOWN = (
    ("normalized_gini", "Gini"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("spearman", "Spearman"),
    ("decile_mape", "decile MAPE"),
    ("top20_capture", "top-20% capture"),
    ("auc", "AUC"),
    ("total_value_error", "total err"),
    ("top20_f1", "top-20% F1"),
)
EXTRA = (
    ("bench_seq.py", "seq.md"),
    ("bench_calibration.py", "calibration.md"),
    ("bench_ablation.py", "ablation.md"),
    ("bench_covariates.py", "covariates.md"),
    ("bench_recommend.py --scale 200000,1000000", "recommend.md"),
    ("bench_simulate.py", "simulate.md"),
    ("bench_service.py", "service.md"),
    ("bench_service.py --scale", "service_scale.md"),
    ("bench_intervals.py", "intervals.md"),
    ("bench_scale.py --spark --events 200000,1000000", "scale.md"),
    ("bench_scale.py --sizes 100000,1000000 --full --no-cdnow --repeat 1 --out scale_10m.md",
     "scale_10m.md"),
    ("sample_curve.py", "sample_curve.md"),
)  # fmt: skip
#: Extras run only with ``--full`` (the 10M-customer curve: too long for every ``make
#: bench``); their last output is appended either way.
FULL_ONLY = ("scale_10m.md",)


def run_one(protocol: str, model: str, timeout: int) -> dict[str, object]:
    """Run bench/_one.py in a fresh interpreter and parse its JSON line."""
    cmd = [sys.executable, str(HERE / "_one.py"), protocol, model]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"protocol": protocol, "model": model, "error": f"timed out after {timeout}s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"protocol": protocol, "model": model, "error": tail[0][:200]}
    row: dict[str, object] = json.loads(lines[-1])
    row["wall_s"] = time.perf_counter() - start
    return row


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def protocol_table(rows: list[dict[str, object]]) -> str:
    """Markdown table of one protocol's rows."""
    head = "| model | " + " | ".join(label for _, label in SHOWN)
    head += " | fit s | predict s | peak MB |\n"
    head += "|---" * (len(SHOWN) + 4) + "|\n"
    body = ""
    for row in rows:
        metrics = row.get("metrics") or {}
        assert isinstance(metrics, dict)
        if row.get("error"):
            body += f"| {row['model']} | skipped: {row['error']} |" + " |" * (len(SHOWN) + 2) + "\n"
            continue
        cells = [_fmt(metrics.get(name)) for name, _ in SHOWN]
        cells += [_fmt(row.get("fit_s"), 2), _fmt(row.get("predict_s"), 2)]
        cells.append(_fmt(row.get("peak_mb"), 0))
        body += f"| {row['model']} | " + " | ".join(cells) + " |\n"
    return head + body


#: (ours, lifetimes' same model) pairs whose train + predict times are compared.
SPEED_PAIRS = (("btyd", "lifetimes"), ("pnbd", "lifetimes_pnbd"))


def speed_line(rows: list[dict[str, object]]) -> str:
    """Our BTYD models' train + predict time against lifetimes' same model, per protocol."""
    by_model = {r["model"]: r for r in rows if not r.get("error")}
    parts = []
    for ours_name, ref_name in SPEED_PAIRS:
        if ours_name not in by_model or ref_name not in by_model:
            continue
        ours = float(by_model[ours_name]["fit_s"]) + float(by_model[ours_name]["predict_s"])  # type: ignore[arg-type]
        ref = float(by_model[ref_name]["fit_s"])  # type: ignore[arg-type]
        ratio = f"{ref / ours:.1f}x faster" if ref >= ours else f"{ours / ref:.1f}x slower"
        parts.append(
            f"{ours_name} train + predict {ours:.2f} s vs {ref_name} {ref:.2f} s ({ratio})"
        )
    return f"Speed (in-process): {'; '.join(parts)}.\n" if parts else ""


def write_readme_block(results: dict[str, list[dict[str, object]]]) -> None:
    """Replace the README's results block with Gini / MAE per protocol and model."""
    readme = REPO / "README.md"
    if not readme.exists():
        return
    lines = ["| protocol | " + " | ".join(MODELS) + " |", "|---" * (len(MODELS) + 1) + "|"]
    for key, rows in results.items():
        by_model = {r["model"]: r for r in rows}
        cells = []
        for model in MODELS:
            row = by_model.get(model)
            metrics = (row or {}).get("metrics") or {}
            assert isinstance(metrics, dict)
            if row is None or row.get("error") or "normalized_gini" not in metrics:
                cells.append("–")
            else:
                cells.append(f"{metrics['normalized_gini']:.3f} / {metrics['mae']:.2f}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    replace_readme_block("bench", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--timeout", type=int, default=1200)
    parser.add_argument(
        "--skip-extra", action="store_true", help="reuse bench/out/*.md from the last run"
    )
    parser.add_argument(
        "--full", action="store_true", help="also run the extras of FULL_ONLY (10M customers)"
    )
    args = parser.parse_args()

    store = HERE / "results.json"
    saved: list[dict[str, object]] = (
        json.loads(store.read_text(encoding="utf-8")) if store.exists() else []
    )
    rows_by_key = {(r["protocol"], r["model"]): r for r in saved}
    for key in args.protocols.split(","):
        for model in args.models.split(","):
            row = run_one(key, model, args.timeout)
            row["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
            rows_by_key[(key, model)] = row
            print(json.dumps(row, default=str), flush=True)
    store.write_text(json.dumps(list(rows_by_key.values()), indent=1, default=str) + "\n")
    results: dict[str, list[dict[str, object]]] = {}
    for key in PROTOCOLS:
        rows = [rows_by_key[(key, m)] for m in MODELS if (key, m) in rows_by_key]
        if rows:
            results[key] = rows

    out = [
        "# Benchmark results\n",
        "Written by `make bench` (`python bench/run.py`); do not edit by hand.\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}. Each model runs in its own process; peak MB is that "
        "process's maximum resident memory (data included). Metrics are computed on the "
        "customers seen up to the cutoff; value = net spend in (cutoff, cutoff + horizon].\n",
    ]
    for key, rows in results.items():
        first = next((r for r in rows if r.get("cutoff")), {})
        out.append(f"\n## {PROTOCOLS[key].title}\n")
        out.append(f"Cutoff {first.get('cutoff', '?')}, horizon {first.get('horizon', '?')}.\n\n")
        out.append(protocol_table(rows))
        auto = next((r for r in rows if r["model"] == "auto" and r.get("reason")), None)
        if auto:
            out.append(f"\nauto: {auto['reason']}\n")
        line = speed_line(rows)
        if line:
            out.append("\n" + line)
    (HERE / "out").mkdir(exist_ok=True)
    for command, md in EXTRA:
        script, *flags = command.split()
        runs = not args.skip_extra and (args.full or md not in FULL_ONLY)
        if runs and (HERE / script).exists():
            limit = 3600 if md in FULL_ONLY else 1800
            subprocess.run([sys.executable, str(HERE / script), *flags], check=False, timeout=limit)
        if (HERE / "out" / md).exists():  # with --skip-extra: the last run's output
            out.append("\n" + (HERE / "out" / md).read_text(encoding="utf-8"))
    (HERE / "results.md").write_text("".join(out), encoding="utf-8")
    write_readme_block(results)
    print(f"wrote {HERE / 'results.md'}")


if __name__ == "__main__":
    main()
