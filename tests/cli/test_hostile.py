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
            manifest["state"]["boosters"]["spend"] = value
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_broken_model_directories_are_one_artifact_error(
    gbdt_dir: Path, store: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    shutil.copy(gbdt_dir / "gbdt_spend.txt", outside)
    cases: dict[str, tuple[str, ...]] = {}
    array = _broken(gbdt_dir, tmp_path, "array")
    (array / "manifest.json").write_text("[1, 2, 3]")
    cases["array"] = ("must be a JSON object",)
    latin = _broken(gbdt_dir, tmp_path, "latin1")
    (latin / "manifest.json").write_bytes(b'{"model": "caf\xe9"}')
    cases["latin1"] = ("unreadable manifest",)
    missing = _broken(gbdt_dir, tmp_path, "missing")
    (missing / "gbdt_spend.txt").unlink()
    cases["missing"] = ("'gbdt_spend.txt' is missing",)
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
