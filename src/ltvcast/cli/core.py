"""Core commands: simulate, train, predict, backtest, demo (filled in by the core issue)."""

from __future__ import annotations
