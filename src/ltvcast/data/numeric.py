"""Numeric columns: the amount (given, or quantity x price), quantity, value, profile columns.

Text may carry a leading currency sign (``"$1,234.50"``) and comma thousands separators; a
decimal comma (``"10,5"``) is not guessed at. Rows whose amount cannot be read
(``invalid_amount``) or is infinite or beyond :data:`~ltvcast.data.schemas.MAX_ABS_AMOUNT`
(``implausible_amount``) are rejected; in the optional numeric columns (quantity, value) such
entries become missing, counted under ``invalid_quantity`` / ``invalid_value``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.checker import TableChecker
from ltvcast.data.schemas import AMOUNT, MAX_ABS_AMOUNT, QUANTITY

#: What each transaction of a dates-only log is worth (see :func:`check_amount`).
DATES_ONLY_AMOUNT = 1.0
#: A plain decimal number (RE2 syntax), read by the fast path of :func:`_numbers`.
_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def check_amount(checker: TableChecker) -> None:
    """Parse the amount and the quantity; reject rows whose amount is unusable.

    Without an amount column, a ``price`` mapping gives ``amount = quantity * price``, and a
    row whose quantity or price cannot be read is rejected too. A log of dates only (no
    amount column, none mapped, no price) is valid: every transaction is worth
    :data:`DATES_ONLY_AMOUNT`, so forecast values count purchases, and the report says so.
    """
    columns = checker.columns
    derive = columns.price is not None
    derive = derive and columns.source("amount") not in checker.frame.columns
    quantity = checker.column("quantity", required=derive)
    count = None if quantity is None else _numbers(quantity)
    if count is not None:
        checker.out[QUANTITY] = count
    if not derive and columns.amount is None and columns.source("amount") not in checker.frame:
        checker.out[AMOUNT] = pd.Series(DATES_ONLY_AMOUNT, index=checker.frame.index)
        checker.report.add(
            checker.table,
            "dates_only",
            len(checker.frame),
            f"no amount column: every transaction counts {DATES_ONLY_AMOUNT:g}, so "
            "predicted_value is the expected number of purchases (map --amount-col or "
            "--price-col for money)",
        )
        return
    if not derive:
        raw = checker.column("amount", required=True)
        assert raw is not None
        checker.out[AMOUNT] = amount = _numbers(raw)
        bad = amount.isna().to_numpy()
        checker.reject("amount", "invalid_amount", _numeric_rule(raw, bad), "are not", bad)
        too_large = _too_large(amount)
        checker.reject("amount", "implausible_amount", _plausible("amount"), "are not", too_large)
        if quantity is not None and count is not None:
            count = _unusable_to_missing(checker, quantity, count, "quantity", "invalid_quantity")
            checker.out[QUANTITY] = count
        return
    price_raw = checker.column("price", required=True)
    assert price_raw is not None and quantity is not None and count is not None
    price = _numbers(price_raw)
    checker.out[AMOUNT] = amount = count * price
    for name, numbers, text in (("price", price, price_raw), ("quantity", count, quantity)):
        bad = numbers.isna().to_numpy()
        checker.reject(name, "invalid_amount", _numeric_rule(text, bad), "are not", bad)
    label = f"{checker.label('quantity')} x {checker.label('price')}"
    too_large = _too_large(amount)
    rule = _plausible("amount")
    checker.reject("amount", "implausible_amount", rule, "are not", too_large, label)


def check_optional_number(checker: TableChecker, target: str, field_name: str) -> None:
    """Put the numbers of ``field_name`` (when present) in column ``target``; unparsable and
    implausible entries become missing (reported under ``invalid_<target>``)."""
    raw = checker.column(field_name, required=False)
    if raw is not None:
        numbers = _numbers(raw)
        checker.out[target] = _unusable_to_missing(
            checker, raw, numbers, field_name, f"invalid_{target}"
        )


def profile_column(values: pd.Series) -> pd.Series:
    """Numbers as float64 when every present value is one, otherwise stripped strings."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.astype("str").str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and bool((numbers.notna() == text.notna()).all()):
        return numbers.astype("float64")
    return text


def _unusable_to_missing(
    checker: TableChecker, raw: pd.Series, numbers: pd.Series, field_name: str, step: str
) -> pd.Series:
    """An optional numeric column with its unparsable and implausible entries missing
    (and reported)."""
    bad = (numbers.isna() & raw.notna()).to_numpy()
    too_large = _too_large(numbers)
    for mask, rule, failure in (
        (bad, "must be numeric", "are not"),
        (too_large, _plausible(field_name), "are not"),
    ):
        if mask.any():
            detail = checker.detail(checker.label(field_name), rule, failure, mask)
            checker.report.add(
                checker.table, step, int(mask.sum()), detail.then("; set to missing")
            )
    return numbers.mask(too_large) if too_large.any() else numbers


def _numeric_rule(raw: pd.Series, bad: np.ndarray) -> str:
    """``must be numeric``, with a word on decimal commas when the bad entries use them."""
    if not bad.any() or pd.api.types.is_numeric_dtype(raw):
        return "must be numeric"
    commas = _decimal_commas(raw[bad].astype("str").str.strip())
    if not commas.any():
        return "must be numeric"
    example = raw[bad][commas].iloc[0]
    return f"must be numeric (decimal commas such as '{example}' are not read)"


def _plausible(what: str) -> str:
    return f"must be finite with |{what}| at most {MAX_ABS_AMOUNT:,.0f}"


def _too_large(numbers: pd.Series) -> np.ndarray:
    """Entries that are infinite or beyond :data:`MAX_ABS_AMOUNT` (missing ones are not)."""
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & ~(np.abs(values) <= MAX_ABS_AMOUNT)


def _numbers(values: pd.Series) -> pd.Series:
    """Float64 numbers; unparsable entries and infinities become NaN.

    Text may carry a leading currency sign (``"$1,234.50"``) and comma thousands separators;
    a decimal comma (``"10,5"``) is not guessed at and counts as unparsable, and in a column
    that holds one, ``"1,250"`` is as ambiguous and unparsable too (not 1250).
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        text = values.astype("str").str.strip()
        numbers = _decimals(text)
        other = (numbers.isna() & text.notna()).to_numpy()
        if other.any():
            numbers[other] = pd.to_numeric(text[other], errors="coerce").astype("float64")
        retry = (numbers.isna() & text.notna()).to_numpy()
        if retry.any():
            numbers = numbers.copy()
            numbers[retry] = pd.to_numeric(_plain_number(text[retry]), errors="coerce")
    return numbers.mask(np.isinf(numbers.to_numpy()))


def _decimals(text: pd.Series) -> pd.Series:
    """Plain decimals (``-12``, ``3.50``) read by Arrow (correctly rounded, as pandas reads
    them); NaN for every other entry."""
    values = pa.array(text.array, from_pandas=True)
    plain = pc.match_substring_regex(values, _DECIMAL)
    numbers = pc.cast(pc.if_else(plain, values, pa.scalar(None, values.type)), pa.float64())
    out = numbers.to_numpy(zero_copy_only=False).astype(np.float64)
    return pd.Series(out, index=text.index)


def _plain_number(text: pd.Series) -> pd.Series:
    text = text.str.replace(r"^([-+]?)\s*[$€£¥]\s*", r"\1", regex=True)
    grouped = text.str.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?").fillna(False)
    if _decimal_commas(text).any():  # then "1,250" may be 1.25: only "1,234.50" is grouped
        grouped &= text.str.contains(".", regex=False).fillna(False)
    return text.mask(grouped, text.str.replace(",", "", regex=False))


def _decimal_commas(text: pd.Series) -> np.ndarray:
    """Entries written with a decimal comma (``10,5``, ``1.234,50``), which are not read."""
    pattern = r"[-+]?\s*[$€£¥]?\s*(\d+,(\d{1,2}|\d{4,})|\d{1,3}(\.\d{3})+,\d+)"
    return text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
