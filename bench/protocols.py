"""Benchmark protocols: which real dataset, which cutoff, which horizon.

Every figure in bench/results.md (and the README) comes from running these through
``bench/run.py``. Cutoffs are fixed dates from the literature where one exists (CDNOW's
39-week calibration), otherwise the data's last timestamp minus the horizon.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ltvcast.data.clean import CleaningReport
from ltvcast.data.datasets import (
    load_cdnow,
    load_completejourney,
    load_grocery,
    load_online_retail,
)
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import default_cutoff
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

REPO = Path(__file__).resolve().parents[1]


def replace_readme_block(name: str, block: str) -> None:
    """Put ``block`` between the README's ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    text = re.sub(
        rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)",
        lambda m: m.group(1) + block + m.group(2),
        text,
        flags=re.S,
    )
    readme.write_text(text, encoding="utf-8")


def write_section(text: str, out: Path) -> None:
    """Print a benchmark's markdown and write it to ``out`` (bench/out/, which ``run.py``
    appends to results.md)."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


def data_dir() -> Path:
    """The shared real-data folder (``$LTVCAST_DATA`` or ``../shared/data``)."""
    return Path(os.environ.get("LTVCAST_DATA", REPO.parent / "shared" / "data"))


@dataclass(frozen=True)
class Protocol:
    """One benchmark split."""

    key: str
    title: str
    loader: Callable[[Path], tuple[CustomerData, CleaningReport]]
    horizon: str
    cutoff: str | None  # None: last timestamp minus the horizon

    def load(self) -> tuple[CustomerData, pd.Timestamp, Horizon]:
        """The data, the cutoff and the horizon of this protocol."""
        data, _ = self.loader(data_dir())
        horizon = parse_horizon(self.horizon)
        if self.cutoff is None:
            cutoff = default_cutoff(data, horizon)
        else:
            cutoff = parse_as_of(self.cutoff, data.last_timestamp())
        return data, cutoff, horizon


PROTOCOLS = {
    p.key: p
    for p in (
        Protocol(
            "cdnow_39w",
            "CDNOW master (23,570 customers): 39-week calibration, 39-week horizon",
            load_cdnow,
            "39w",
            "1997-09-30",
        ),
        Protocol(
            "cdnow_13w",
            "CDNOW master: as of 1998-03-31, 13-week horizon",
            load_cdnow,
            "13w",
            "1998-03-31",
        ),
        Protocol(
            "online_retail_90d",
            "UCI Online Retail: last 90 days held out",
            load_online_retail,
            "90d",
            None,
        ),
        Protocol(
            "online_retail_180d",
            "UCI Online Retail: last 180 days held out",
            load_online_retail,
            "180d",
            None,
        ),
        Protocol(
            "completejourney_90d",
            "Complete Journey (2,469 households, profiles for 801): last 90 days held out",
            load_completejourney,
            "90d",
            None,
        ),
        Protocol(
            "grocery_52w",
            "Online grocery (BTYDplus, 1,525 customers, dates only: value = purchase days): "
            "calibration 2006, the 52 weeks of 2007 held out",
            load_grocery,
            "52w",
            "2006-12-31",
        ),
    )
}
