from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

import ltvcast
from ltvcast.cli import run_app


def test_all_is_sorted_and_importable() -> None:
    assert ltvcast.__all__ == sorted(ltvcast.__all__)
    for name in ltvcast.__all__:
        assert hasattr(ltvcast, name), name


def test_import_does_not_load_heavy_dependencies() -> None:
    heavy = "('pandas', 'scipy', 'torch', 'lightgbm', 'fastapi')"
    code = f"import sys, ltvcast; print(any(m in sys.modules for m in {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_public_name_is_lazy_and_listed() -> None:
    assert set(ltvcast.__all__) == {*ltvcast._PUBLIC, "__version__"}


def test_cli_start_up_loads_no_library() -> None:
    heavy = "('pandas', 'scipy', 'torch', 'lightgbm', 'fastapi', 'jinja2', 'matplotlib')"
    code = f"import sys, ltvcast.cli; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scoring_process_loads_no_optimiser(tmp_path: Path, cdnow_sample_tx: pd.DataFrame) -> None:
    # scipy.optimize (a third of a CDNOW forecast's start-up) is a fit's alone; a written
    # CSV needs no pyarrow.parquet, output off a terminal no rich spinner, and a small store
    # scored in memory no DuckDB.
    source = tmp_path / "tx.csv"
    cdnow_sample_tx.to_csv(source, index=False)
    model, out = tmp_path / "model", tmp_path / "p.csv"
    assert (
        run_app(["train", str(source), "--model", "btyd", "--horizon", "39w", "--out", str(model)])
        == 0
    )
    heavy = ("scipy.optimize", "pyarrow.parquet", "rich.progress", "rich.live", "duckdb")
    code = (
        "import sys; from ltvcast.cli import run_app; "
        f"code = run_app(['predict', {str(model)!r}, {str(source)!r}, '--out', {str(out)!r}]); "
        f"print(code, [m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []"
    assert len(pd.read_csv(out)) == cdnow_sample_tx["customer_id"].nunique()
