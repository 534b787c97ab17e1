"""Hostile input through the real console script: one line, the right exit code, no traceback.

Each case runs ``ltvcast`` as a user does (a subprocess of the installed entry point).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ltvcast.data.synthetic import simulate_store, write_store
from ltvcast.timeframe import parse_horizon

LTVCAST = shutil.which("ltvcast", path=str(Path(sys.executable).parent))


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if LTVCAST is None:
        pytest.skip("the ltvcast console script is not installed (pip install -e .)")
    return subprocess.run([LTVCAST, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _one_error(run: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    """Exit ``code``, no traceback, and the fragments in stderr's last line."""
    assert run.returncode == code, (run.returncode, run.stdout[-500:], run.stderr[-2000:])
    assert "Traceback" not in run.stderr + run.stdout
    last = run.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, (fragment, run.stderr)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    found = simulate_store(300, days=400, events=False, dirty_rate=0.0, random_state=2)
    return write_store(found, tmp_path_factory.mktemp("store"), horizon=parse_horizon("60d"))


@pytest.fixture(scope="module")
def gbdt_dir(store: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "gbdt"
    run = _run("train", str(store["transactions"]), "--horizon", "60d", "--model", "gbdt",
               "--out", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    return out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((), ""),  # no arguments: the help, as a usage error
        (("nope",), "No such command 'nope'"),
        (("train", "x.csv", "--out", "o"), "Missing option '--horizon'"),
        (("train", "x.csv", "--out", "o", "--horizon", "9d", "--returns", "foo"), "--returns"),
        (("train", "x.csv", "--out", "o", "--horizon", "9d", "--winsorize", "abc"), "--winsorize"),
        (("serve", "m", "--port", "abc"), "--port"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    run = _run(*args, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "Usage: ltvcast" in run.stdout + run.stderr
    assert fragment in run.stderr


def test_bad_out_paths_fail_before_any_work(store: dict[str, Path], tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    source = str(store["transactions"])
    for out in (a_file, a_file / "sub", Path("/proc/ltvcast")):
        run = _run("train", source, "--horizon", "60d", "--out", str(out))
        _one_error(run, 2, "--out", "cannot write there")
        assert "Loading" not in run.stdout  # refused while parsing the flags
    run = _run("predict", str(tmp_path), source, "--out", str(tmp_path))
    _one_error(run, 2, "is a directory")


def test_an_absurd_horizon_is_refused(store: dict[str, Path], tmp_path: Path) -> None:
    run = _run("train", str(store["transactions"]), "--horizon", "99999999999999999999d",
               "--out", str(tmp_path / "m"))  # fmt: skip
    _one_error(run, 2, "horizon must be at most 100 years")


def _broken(source: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def _edit_manifest(directory: Path, **changes: object) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "booster":
            manifest["state"]["boosters"]["active"] = value
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_broken_model_directories_are_one_artifact_error(
    gbdt_dir: Path, store: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    shutil.copy(gbdt_dir / "gbdt_active.txt", outside)
    cases: dict[str, tuple[str, ...]] = {}
    array = _broken(gbdt_dir, tmp_path, "array")
    (array / "manifest.json").write_text("[1, 2, 3]")
    cases["array"] = ("must be a JSON object",)
    latin = _broken(gbdt_dir, tmp_path, "latin1")
    (latin / "manifest.json").write_bytes(b'{"model": "caf\xe9"}')
    cases["latin1"] = ("unreadable manifest",)
    missing = _broken(gbdt_dir, tmp_path, "missing")
    (missing / "gbdt_active.txt").unlink()
    cases["missing"] = ("'gbdt_active.txt' is missing",)
    as_of = _broken(gbdt_dir, tmp_path, "as_of")
    _edit_manifest(as_of, as_of="not a date")
    cases["as_of"] = ("bad horizon or as_of",)
    passwd = _broken(gbdt_dir, tmp_path, "passwd")
    _edit_manifest(passwd, booster="../../../../etc/passwd")
    cases["passwd"] = ("outside the model directory",)
    absolute = _broken(gbdt_dir, tmp_path, "absolute")
    _edit_manifest(absolute, booster=str(outside))
    cases["absolute"] = ("outside the model directory",)
    for name, fragments in cases.items():
        run = _run("predict", str(tmp_path / name), str(store["transactions"]),
                   "--out", str(tmp_path / f"{name}.csv"))  # fmt: skip
        _one_error(run, 2, *fragments)
        assert not (tmp_path / f"{name}.csv").exists()


def _train(source: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run("train", str(source), "--horizon", "30d", "--model", "baseline",
                "--out", str(tmp_path / "model"), *extra)  # fmt: skip


def _csv(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


DAY_FIRST = "customer_id,timestamp,amount\n" + "".join(
    f"c{i},{d:02d}/{m:02d}/2023,10\n"
    for i, (d, m) in enumerate([(31, 12), (5, 1), (3, 2), (13, 4)])
)


def test_day_first_dates_are_read_day_first_or_refused(tmp_path: Path) -> None:
    run = _train(_csv(tmp_path, "dmy.csv", DAY_FIRST), tmp_path)
    assert run.returncode == 0, run.stderr
    assert "day first" in run.stdout.replace("-", " ") or "day/month" in run.stdout
    ambiguous = "customer_id,timestamp,amount\nc1,01/02/2023,10\nc2,03/04/2023,5\n"
    _one_error(
        _train(_csv(tmp_path, "amb.csv", ambiguous), tmp_path), 2, "timestamp", "--date-format"
    )
    forced = _train(_csv(tmp_path, "amb2.csv", ambiguous), tmp_path, "--date-format", "%d/%m/%Y")
    assert forced.returncode == 0, forced.stderr


def test_times_outside_the_range_and_a_numeric_time_column(tmp_path: Path) -> None:
    text = "customer_id,timestamp,amount\nc1,1600-01-01,10\nc1,2024-01-05,10\nc2,9999-01-01,5\n"
    run = _train(_csv(tmp_path, "range.csv", text), tmp_path)
    assert run.returncode == 0 and "out of range" in run.stdout.replace("_", " "), run.stdout
    _one_error(_train(_csv(tmp_path, "num.csv", DAY_FIRST), tmp_path, "--time-col", "amount"), 2,
               "amount")  # fmt: skip


def test_a_megabyte_header_is_refused_at_once(tmp_path: Path) -> None:
    wide = _csv(tmp_path, "wide.csv", ",".join(f"column_{i}" for i in range(100_000)))
    _one_error(_train(wide, tmp_path), 2, "wide.csv")


def test_repeated_columns_and_absurd_amounts(tmp_path: Path) -> None:
    twice = "customer_id,timestamp,amount,amount\nc1,2024-01-05,10,11\n"
    _one_error(_train(_csv(tmp_path, "twice.csv", twice), tmp_path), 2, "'amount' appears 2 times")
    huge = "customer_id,timestamp,amount\nc1,2024-01-05,1e308\nc1,2024-02-05,10\nc2,2024-01-09,4\n"
    run = _train(_csv(tmp_path, "huge.csv", huge), tmp_path)
    assert run.returncode == 0 and "implausible amount: 1 rows" in run.stdout, run.stdout


def test_rows_after_now_are_reported(tmp_path: Path) -> None:
    text = "customer_id,timestamp,amount\nc1,2024-01-05,10\nc1,2024-02-05,10\nc2,2030-01-01,4\n"
    run = _train(_csv(tmp_path, "future.csv", text), tmp_path)
    assert run.returncode == 0 and "future timestamp: 1 rows" in run.stdout, run.stdout
    assert "2024-02-05" in run.stdout and "2030" not in run.stdout.split("Training")[-1]


def test_other_encodings_and_delimiters_are_read(tmp_path: Path) -> None:
    rows = "customer_id;timestamp;amount\nc1;2024-01-05;10\nc1;2024-02-05;10\nc2;2024-01-09;4\n"
    assert _train(_csv(tmp_path, "semi.csv", rows), tmp_path).returncode == 0
    utf16 = _csv(tmp_path, "utf16.csv", rows.replace(";", ","), encoding="utf-16")
    assert _train(utf16, tmp_path).returncode == 0


def test_an_as_of_before_all_data_says_so(tmp_path: Path) -> None:
    rows = "customer_id,timestamp,amount\nc1,2024-01-05,10\nc1,2024-02-05,10\n"
    run = _train(_csv(tmp_path, "few.csv", rows), tmp_path, "--as-of", "2020-01-01")
    _one_error(run, 2, "no transaction up to 2020-01-01")


@pytest.mark.realdata
def test_the_readme_mapping_keeps_online_retail_revenue(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / "online_retail" / "online_retail.csv.gz"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    run = _run("train", str(source), "--customer-col", "CustomerID", "--time-col", "InvoiceDate",
               "--quantity-col", "Quantity", "--price-col", "UnitPrice", "--order-col",
               "InvoiceNo", "--timezone", "Europe/London", "--horizon", "90d", "--model", "btyd",
               "--out", str(tmp_path / "or"))  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    duplicates = [line for line in run.stdout.splitlines() if "duplicates:" in line]
    assert duplicates and "5,225 rows" in duplicates[0], duplicates
