"""Lazy attributes of a package (PEP 562): names load from their module on first access."""

from __future__ import annotations

import importlib
from typing import Any


def load(package: dict[str, Any], table: dict[str, str], name: str) -> Any:
    """``name`` from the module ``table`` maps it to, cached in the ``package`` namespace.

    Raises
    ------
    AttributeError
        For a name the table does not list (as a missing attribute would).
    """
    if name not in table:
        raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(table[name]), name)
    package[name] = value  # later accesses skip the package's __getattr__
    return value
