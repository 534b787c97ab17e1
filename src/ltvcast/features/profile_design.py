"""Profile columns as a design matrix: the covariates of the BTYD models with covariates.

A log-linear covariate model (:mod:`ltvcast.models.covariates`) needs numeric columns whose
0 is a meaningful baseline, and one 0/1 column per category against a reference level;
:class:`~ltvcast.features.tabular.ProfileEncoder` codes categories as integers for trees
instead. Everything is learnt on the training customers and kept in :meth:`to_dict`, so
predictions encode profiles the same way:

- numeric (and boolean) columns are standardised with the training mean and standard
  deviation, so the population's parameters are those of an average customer; a missing
  value takes the mean (0), and when at least ``min_count`` training customers had one, a
  0/1 column ``<column>=(missing)`` estimates how they differ instead of assuming they do
  not;
- any other column is categorical (as strings; a missing value is the level ``(missing)``):
  the most frequent training level other than ``(missing)`` is the reference (no column),
  and each of the next ``max_levels`` levels held by at least ``min_count`` training
  customers gets a 0/1 column ``<column>=<level>``. The rarer levels and any level first
  seen at predict time are pooled as ``(other)``, with its own column when the pool holds at
  least ``min_count`` training customers, in the reference otherwise.

A customer without a profile row is missing in every column. ``missing_`` counts the
training customers with a missing value per column. Columns of the design equal to an
earlier one on the training customers (``income=(missing)`` when the customers without an
income are those without an age, as when some customers have no profile row) are left out
and listed in ``duplicates_``: no model could tell their effects apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.exceptions import ConfigError, NotFittedError

#: Training customers a category needs to get its own column.
MIN_LEVEL_COUNT = 30
#: Categories of one column with their own column, at most (the reference excluded).
MAX_LEVELS = 10
MISSING, OTHER = "(missing)", "(other)"


class ProfileDesign:
    """Encode the profile ``columns`` as a float design matrix (see the module docstring).

    Parameters
    ----------
    columns
        Profile columns to encode, in order.
    min_count, max_levels
        A category's training customers needed for its own column, and the most categories
        of a column with one.

    Attributes
    ----------
    numeric_ : dict
        Per numeric column: training ``mean``, ``sd`` and whether it has a ``missing``
        indicator column.
    levels_ : dict
        Per categorical column: ``reference`` (its level), ``levels`` (with a column each)
        and ``other`` (whether the pooled level has a column).
    missing_ : dict
        Training customers with a missing value, per column.
    duplicates_ : dict
        Design columns left out, each with the earlier column it equals in training.
    """

    def __init__(
        self,
        columns: Sequence[str] = (),
        min_count: int = MIN_LEVEL_COUNT,
        max_levels: int = MAX_LEVELS,
    ) -> None:
        self.columns = tuple(columns)
        self.min_count = min_count
        self.max_levels = max_levels

    def fit(self, profiles: pd.DataFrame | None, customers: pd.Index) -> Self:
        """Learn the encoding from the profiles of the training ``customers``.

        Raises
        ------
        ConfigError
            Without profiles, for a column the profiles lack, a date column, or a column
            that holds one value only for the training customers (the message names it).
        """
        if self.min_count < 1 or self.max_levels < 1:
            raise ConfigError(
                f"min_count and max_levels must be >= 1; got {self.min_count}, {self.max_levels}"
            )
        if profiles is None:
            raise ConfigError(
                f"covariates {list(self.columns)} are profile columns, but no profiles were "
                "given (--profiles)"
            )
        absent = [c for c in self.columns if c not in profiles.columns or c == CUSTOMER_ID]
        if absent:
            have = [str(c) for c in profiles.columns if c != CUSTOMER_ID]
            raise ConfigError(
                f"covariate(s) {absent} are not profile columns; profiles have {have}"
            )
        rows = _rows(profiles, customers)
        self.numeric_: dict[str, dict[str, Any]] = {}
        self.levels_: dict[str, dict[str, Any]] = {}
        self.missing_: dict[str, int] = {}
        for column in self.columns:
            values = rows[column]
            if pd.api.types.is_datetime64_any_dtype(values):
                raise ConfigError(
                    f"profile column {column!r} holds dates; derive a number from it (e.g. "
                    "days since) to use it as a covariate"
                )
            self.missing_[column] = int(values.isna().sum())
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                self.numeric_[column] = self._fit_numeric(column, values.astype(np.float64))
            else:
                self.levels_[column] = self._fit_levels(column, _categories(values))
        self.duplicates_: dict[str, str] = {}
        design = self._encode(rows, customers)
        repeated = design.T.duplicated().to_numpy()
        for name in design.columns[repeated]:
            first = next(c for c in design.columns if design[c].equals(design[name]))
            self.duplicates_[str(name)] = str(first)
        return self

    @property
    def feature_names(self) -> list[str]:
        """The design's column names, in order: per profile column, its value (numeric) then
        its missing indicator, or its levels then ``(other)`` (categorical); without
        ``duplicates_``."""
        self._check_fitted()
        return [name for name in self._all_names() if name not in self.duplicates_]

    def _all_names(self) -> list[str]:
        names: list[str] = []
        for column in self.columns:
            if column in self.numeric_:
                names.append(column)
                if self.numeric_[column]["missing"]:
                    names.append(f"{column}={MISSING}")
            else:
                spec = self.levels_[column]
                names += [f"{column}={level}" for level in spec["levels"]]
                if spec["other"]:
                    names.append(f"{column}={OTHER}")
        return names

    def transform(self, profiles: pd.DataFrame | None, customers: pd.Index) -> pd.DataFrame:
        """The design matrix of ``customers`` (missing profiles or columns: missing values).

        Returns
        -------
        DataFrame
            Indexed by ``customers``, float64 columns :attr:`feature_names`.
        """
        self._check_fitted()
        if profiles is None:
            profiles = pd.DataFrame({CUSTOMER_ID: pd.Series([], dtype=str)})
        return self._encode(_rows(profiles, customers), customers)[self.feature_names]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (inverse of :meth:`from_dict`)."""
        self._check_fitted()
        return {
            "columns": list(self.columns),
            "min_count": self.min_count,
            "max_levels": self.max_levels,
            "numeric": self.numeric_,
            "levels": self.levels_,
            "missing": self.missing_,
            "duplicates": self.duplicates_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ProfileDesign:
        """Rebuild a design written by :meth:`to_dict`."""
        design = cls(state["columns"], int(state["min_count"]), int(state["max_levels"]))
        design.numeric_ = {str(k): dict(v) for k, v in state["numeric"].items()}
        design.levels_ = {str(k): dict(v) for k, v in state["levels"].items()}
        design.missing_ = {str(k): int(v) for k, v in state["missing"].items()}
        design.duplicates_ = {str(k): str(v) for k, v in state["duplicates"].items()}
        return design

    # ------------------------------------------------------------------ helpers
    def _encode(self, rows: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
        """Every design column (duplicates included) of the profile ``rows``."""
        out: dict[str, Any] = {}
        for column in self.columns:
            raw = rows[column] if column in rows.columns else pd.Series(np.nan, index=customers)
            if column in self.numeric_:
                spec = self.numeric_[column]
                values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
                out[column] = ((values - spec["mean"]) / spec["sd"]).fillna(0.0)
                if spec["missing"]:
                    out[f"{column}={MISSING}"] = values.isna().astype(np.float64)
            else:
                spec = self.levels_[column]
                levels = _categories(raw)
                for level in spec["levels"]:
                    out[f"{column}={level}"] = (levels == level).astype(np.float64)
                if spec["other"]:
                    known = [spec["reference"], *spec["levels"]]
                    out[f"{column}={OTHER}"] = (~levels.isin(known)).astype(np.float64)
        frame = pd.DataFrame(out, index=customers)
        return frame[self._all_names()].astype(np.float64)

    def _fit_numeric(self, column: str, values: pd.Series) -> dict[str, Any]:
        present = values.dropna()
        if present.nunique() < 2:
            raise ConfigError(
                f"profile column {column!r} has {present.nunique()} distinct value(s) among "
                f"the {len(values)} training customers; a covariate must vary"
            )
        return {
            "mean": float(present.mean()),
            "sd": float(present.std(ddof=0)),
            "missing": int(values.isna().sum()) >= self.min_count,
        }

    def _fit_levels(self, column: str, levels: pd.Series) -> dict[str, Any]:
        counts = levels.value_counts()
        # The reference: the most frequent level that is not missing, where there is one.
        ranked = sorted(counts.items(), key=lambda item: (item[0] == MISSING, -item[1], item[0]))
        ranked = ranked[:1] + sorted(ranked[1:], key=lambda item: (-item[1], item[0]))
        if len(ranked) < 2:
            raise ConfigError(
                f"profile column {column!r} has one level ({ranked[0][0]!r}) among the "
                f"{len(levels)} training customers; a covariate must vary"
            )
        reference = str(ranked[0][0])
        kept = [str(v) for v, n in ranked[1:] if n >= self.min_count][: self.max_levels]
        pooled = int(sum(n for v, n in ranked[1:] if str(v) not in kept))
        if not kept and pooled < self.min_count:
            raise ConfigError(
                f"profile column {column!r} has no level but {reference!r} held by at least "
                f"{self.min_count} training customers; a covariate must vary"
            )
        return {"reference": reference, "levels": kept, "other": pooled >= self.min_count}

    def _check_fitted(self) -> None:
        if not hasattr(self, "numeric_"):
            raise NotFittedError("ProfileDesign is not fitted; call fit(profiles, customers)")


def _rows(profiles: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """One profile row per customer of ``customers`` (the last one of duplicates; all
    missing for a customer without one)."""
    rows = profiles.drop_duplicates(CUSTOMER_ID, keep="last").set_index(CUSTOMER_ID)
    return rows.reindex(customers)


def _categories(values: pd.Series) -> pd.Series:
    """Categorical values as strings, missing ones as :data:`MISSING`."""
    out = values.astype(object).where(values.notna(), MISSING)
    return out.astype(str)
