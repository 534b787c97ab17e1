"""L4 apply: forecasts to decisions (segments, contact plans under a budget, explanations)."""

from __future__ import annotations
