"""Small raw tables shared by the validation tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


@pytest.fixture
def raw_tx() -> Callable[..., pd.DataFrame]:
    """Four raw transactions (customers a..d, 2024-01-01..04, amounts 10..40); each keyword
    argument replaces (or adds) a whole column."""

    def make(**overrides: list[object]) -> pd.DataFrame:
        base: dict[str, list[object]] = {
            "customer_id": ["a", "b", "c", "d"],
            "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
            "amount": [10.0, 20.0, 30.0, 40.0],
        }
        base.update(overrides)
        return pd.DataFrame(base)

    return make
