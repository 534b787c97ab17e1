from __future__ import annotations

import subprocess
import sys

import ltvcast


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
