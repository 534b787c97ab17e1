"""Loaders for the real datasets of ``../shared/data``, each to canonical tables plus a report.

Every loader takes either the data root (``shared/data``) or the dataset's own folder, reads
the files as their README describes, states each dataset-specific decision in the
:class:`CleaningReport`, and passes the tables through :mod:`ltvcast.data.validate`.

Decisions per dataset:

- **CDNOW**: ``customer_id`` is the 5-digit master id, ``amount`` the line's dollar value,
  ``quantity`` the CDs. The 255 exact duplicate lines are kept (the README judges them separate
  orders of equal value), so totals match the published $2,500,315.63.
- **Online Retail**: ``amount = Quantity * UnitPrice`` (GBP), ``order_id = InvoiceNo``,
  ``item_id = StockCode``; times are UK wall-clock (``Europe/London``) converted to UTC. Rows
  without CustomerID are dropped and counted; "C" invoices are returns (netted by default);
  exact duplicate lines (equal in all 8 columns) are dropped. Postage, carriage, discounts,
  manual lines and samples (POST, DOT, C2, D, M, S ...) are what the customer paid or was
  refunded, so they stay;
  fees and commissions that are not customer spend (BANK CHARGES, AMAZONFEE, CRUK) and the
  bad-debt adjustments (StockCode B, invoices "A...") are dropped. Profiles: each customer's
  most frequent Country.
- **Shapees**: events from the tracking spine with prices/order totals joined on the event id;
  the bot-like user the README flags (9,116 events, no order) is excluded. Transactions are the
  43 orders with a known ``total_price`` (all of 2024); older orders stay purchase events only.
- **Complete Journey**: receipt lines (``sales_value``, basket as order, UTC times),
  demographics as profiles, campaign contacts (at the campaign start) and coupon redemptions
  as events (item_id: the campaign, or the coupon redeemed).
- **Online grocery** (BTYDplus): purchase dates only, so every purchase is worth 1 (value
  forecasts count purchase days).
- **REES46 / Taobao heads**: behaviour events; REES46 purchases with their price also become
  transactions (session as order). Taobao has no money, so its transactions table is empty,
  and the one row outside the official window is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import SUPPORTED_SUFFIXES, ColumnMap, table_suffix
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, PURCHASE, TIMESTAMP, CustomerData
from ltvcast.data.times import TIMESTAMP_DTYPE
from ltvcast.data.validate import (
    EVENTS,
    TRANSACTIONS,
    load_customer_data,
    validate_events,
    validate_profiles,
    validate_transactions,
)
from ltvcast.exceptions import SchemaError

Loaded = tuple[CustomerData, CleaningReport]

CDNOW_MASTER = "CDNOW_master.txt"
CDNOW_SAMPLE = "CDNOW_sample.txt"
ONLINE_RETAIL = "online_retail.csv.gz"
SHAPEES_EVENTS = "events.csv.gz"
SHAPEES_ORDERS = "order_completed.csv"
JOURNEY_TRANSACTIONS = "transactions.csv.gz"
JOURNEY_CAMPAIGNS = "campaigns.csv"
REES46_HEAD = "2019-Oct_head*.csv"
TAOBAO_HEAD = "UserBehavior_head*.csv"
GROCERY = "groceryElog.csv"

#: StockCodes of Online Retail lines that are not customer spend (fees, commission, bad debt).
RETAIL_NON_PURCHASE_CODES = ("AMAZONFEE", "BANK CHARGES", "CRUK", "B")
#: The user of the Shapees sample that its README flags as a bot, shared device or test.
SHAPEES_EXCLUDED_USERS = ("d2876433-8da4-4e4a-9ea6-a5a72e6a96bf",)
#: Taobao's official window, 2017-11-25 .. 2017-12-03 in China time (UTC+8), in UTC.
TAOBAO_WINDOW = (pd.Timestamp("2017-11-24 16:00"), pd.Timestamp("2017-12-03 16:00"))


def load_cdnow(
    data_dir: Path,
    which: Literal["master", "sample"] = "master",
    options: CleaningOptions | None = None,
) -> Loaded:
    """CDNOW transaction log (Fader & Hardie): the full master file or its 1/10 sample."""
    options = options or CleaningOptions(drop_duplicates=False)
    if which == "master":
        path = _find(data_dir, "cdnow", CDNOW_MASTER)
        raw = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    elif which == "sample":
        path = _find(data_dir, "cdnow", CDNOW_SAMPLE)
        names = ["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"]
        raw = pd.read_csv(
            path, sep=r"\s+", header=None, names=names, dtype={"customer_id": str, "date": str}
        )
    else:
        raise SchemaError(f"CDNOW: 'which' must be 'master' or 'sample', got {which!r}")
    report = CleaningReport()
    columns = ColumnMap(time="date", amount="dollar_value", quantity="number_of_cds")
    tx = validate_transactions(raw, str(path), columns, options, report)
    return CustomerData(tx), report


def load_cdnow_sample(data_dir: Path) -> Loaded:
    """The 2,357-customer CDNOW sample (ids are the master ids)."""
    return load_cdnow(data_dir, "sample")


def load_online_retail(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """UCI Online Retail (541,909 invoice lines, 2010-12 .. 2011-12) with Country profiles."""
    options = options or CleaningOptions(source_timezone="Europe/London")
    path = _find(data_dir, "online_retail", ONLINE_RETAIL)
    text = {c: str for c in ("InvoiceNo", "StockCode", "CustomerID")}
    raw = pd.read_csv(path, dtype=text, engine="pyarrow")
    report = CleaningReport()
    has_id = raw["CustomerID"].notna()
    report.add(
        TRANSACTIONS,
        "source",
        len(raw),
        f"{path.name}: {raw['CustomerID'].nunique():,} customer ids, {int((~has_id).sum()):,} "
        "rows without one",
    )
    non_purchase = raw["StockCode"].isin(RETAIL_NON_PURCHASE_CODES) | raw[
        "InvoiceNo"
    ].str.startswith("A").fillna(False)
    dropped = (non_purchase & has_id).to_numpy()
    counts = raw.loc[non_purchase, "StockCode"].value_counts()
    listing = ", ".join(f"{code} {n}" for code, n in counts.items())
    report.add(
        TRANSACTIONS,
        "non_purchase_lines",
        int(dropped.sum()),
        f"fees, commission and bad debt are not customer spend ({listing} lines in the file; "
        "those without a CustomerID fall under the missing-id rule): dropped",
    )
    raw = raw[~dropped]
    columns = ColumnMap(
        customer="CustomerID",
        time="InvoiceDate",
        order="InvoiceNo",
        quantity="Quantity",
        price="UnitPrice",
        item="StockCode",
    )
    tx = validate_transactions(raw, str(path), columns, options, report)
    countries = raw.loc[has_id[~dropped], ["CustomerID", "Country"]]
    profiles = validate_profiles(
        _most_frequent(countries, "CustomerID", "Country"),
        f"{path} (Country)",
        ColumnMap(customer="CustomerID"),
        report,
    )
    return CustomerData(tx, profiles=profiles), report


def load_shapees(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """Shapees.com tracking events of 250 users, with the 43 valued orders as transactions."""
    options = options or CleaningOptions()
    folder = _find(data_dir, "shapees_events", SHAPEES_EVENTS).parent
    raw = pd.read_csv(folder / SHAPEES_EVENTS, dtype=str)
    report = CleaningReport()
    report.add(EVENTS, "source", len(raw), f"{folder}: {raw['user_id'].nunique():,} users")
    bot = raw["user_id"].isin(SHAPEES_EXCLUDED_USERS).to_numpy()
    report.add(EVENTS, "excluded_users", int(bot.sum()), "bot-like user flagged by the README")
    raw = raw[~bot]
    values = pd.concat(
        [
            _detail(folder / "product_viewed.csv.gz", "price", "variant"),
            _detail(folder / "product_added.csv", "price", "variant"),
            _detail(folder / "checkout_started.csv", "total_price"),
            _detail(folder / SHAPEES_ORDERS, "total_price"),
        ]
    ).drop_duplicates("id")
    raw = raw.merge(values, how="left", left_on="event_id", right_on="id", validate="many_to_one")
    columns = ColumnMap(customer="user_id", time="ts", item="variant")
    events = validate_events(raw, str(folder / SHAPEES_EVENTS), columns, options, report)
    is_order = raw["event_type"].str.strip().str.lower() == "order completed"
    orders = raw[is_order]
    valued = orders["value"].notna().to_numpy()
    report.add(
        TRANSACTIONS,
        "orders_without_value",
        int((~valued).sum()),
        "orders before 2024 have no total_price; they stay purchase events only",
    )
    orders = orders[valued].rename(columns={"value": AMOUNT, "event_id": "order_id"})
    order_columns = ColumnMap(customer="user_id", time="ts")
    tx = validate_transactions(orders, str(folder / SHAPEES_ORDERS), order_columns, options, report)
    return CustomerData(tx, events), report


def load_completejourney(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """84.51° Complete Journey 2.0: receipts, demographics, campaign and coupon events."""
    options = options or CleaningOptions()
    path = _find(data_dir, "completejourney_full", JOURNEY_TRANSACTIONS)
    folder = path.parent
    raw = pd.read_csv(
        path,
        usecols=[
            "household_id",
            "basket_id",
            "product_id",
            "quantity",
            "sales_value",
            "transaction_timestamp",
        ],
        engine="pyarrow",
    )
    report = CleaningReport()
    columns = ColumnMap(
        customer="household_id",
        time="transaction_timestamp",
        amount="sales_value",
        order="basket_id",
        item="product_id",
    )
    tx = validate_transactions(raw, str(path), columns, options, report)

    campaigns = pd.read_csv(folder / JOURNEY_CAMPAIGNS, dtype=str).merge(
        pd.read_csv(folder / "campaign_descriptions.csv", dtype=str), on="campaign_id"
    )
    redemptions = pd.read_csv(folder / "coupon_redemptions.csv", dtype=str)
    contacts = pd.concat(
        [
            pd.DataFrame(
                {
                    "household_id": campaigns["household_id"],
                    "time": campaigns["start_date"],
                    "event_type": "campaign",
                    "item_id": campaigns["campaign_id"],
                }
            ),
            pd.DataFrame(
                {
                    "household_id": redemptions["household_id"],
                    "time": redemptions["redemption_date"],
                    "event_type": "coupon_redemption",
                    "item_id": redemptions["coupon_upc"],
                }
            ),
        ],
        ignore_index=True,
    )
    events = validate_events(
        contacts,
        f"{folder}/{JOURNEY_CAMPAIGNS} + coupon_redemptions.csv",
        ColumnMap(customer="household_id", time="time"),
        options,
        report,
    )
    demographics = pd.read_csv(folder / "demographics.csv", dtype={"household_id": str})
    profiles = validate_profiles(
        demographics, str(folder / "demographics.csv"), ColumnMap(customer="household_id"), report
    )
    return CustomerData(tx, events, profiles), report


def load_grocery(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """BTYDplus' online grocery log: purchase dates of 1,525 customers, no amounts (a
    dates-only log: every purchase counts 1, see :mod:`ltvcast.data.numeric`)."""
    options = options or CleaningOptions()
    path = _find(data_dir, "grocery_btydplus", GROCERY)
    raw = pd.read_csv(path, dtype=str)
    report = CleaningReport()
    columns = ColumnMap(customer="cust", time="date")
    tx = validate_transactions(raw, str(path), columns, options, report)
    return CustomerData(tx), report


def load_rees46_head(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """REES46 event log head (3 hours): events, and purchases with their price as transactions."""
    options = options or CleaningOptions()
    path = _find(data_dir, "rees46_head_sample", REES46_HEAD)
    raw = pd.read_csv(path, dtype={"user_id": str, "product_id": str, "user_session": str})
    report = CleaningReport()
    columns = ColumnMap(customer="user_id", time="event_time", item="product_id", value="price")
    events = validate_events(raw, str(path), columns, options, report)
    purchases = raw[raw["event_type"] == PURCHASE]
    tx = validate_transactions(
        purchases,
        f"{path} (purchases)",
        ColumnMap(
            customer="user_id",
            time="event_time",
            amount="price",
            order="user_session",
            item="product_id",
        ),
        options,
        report,
    )
    return CustomerData(tx, events), report


def load_taobao_head(data_dir: Path, options: CleaningOptions | None = None) -> Loaded:
    """Taobao UserBehavior head (43 users, 9 days): events only; the transactions are empty."""
    options = options or CleaningOptions()
    path = _find(data_dir, "taobao_userbehavior_head", TAOBAO_HEAD)
    names = ["user_id", "item_id", "category_id", "event_type", "timestamp"]
    raw = pd.read_csv(path, header=None, names=names, dtype={"user_id": str, "item_id": str})
    report = CleaningReport()
    columns = ColumnMap(customer="user_id")
    events = validate_events(raw, str(path), columns, options, report)
    start, end = TAOBAO_WINDOW
    inside = ((events[TIMESTAMP] >= start) & (events[TIMESTAMP] < end)).to_numpy()
    report.add(
        EVENTS,
        "outside_window",
        int((~inside).sum()),
        "outside the official 2017-11-25 .. 2017-12-03 (UTC+8) window: dropped",
    )
    events = events[inside].reset_index(drop=True)
    report.add(TRANSACTIONS, "result", 0, "the data set has no monetary values")
    return CustomerData(_empty_transactions(), events), report


DATASETS: dict[str, Callable[[Path], Loaded]] = {
    "cdnow": load_cdnow,
    "cdnow_sample": load_cdnow_sample,
    "online_retail": load_online_retail,
    "shapees": load_shapees,
    "completejourney": load_completejourney,
    "grocery": load_grocery,
    "rees46_head": load_rees46_head,
    "taobao_head": load_taobao_head,
}

#: File (glob) that identifies each dataset's folder, in the order they are tried.
_MARKERS = (
    ("cdnow", CDNOW_MASTER),
    ("cdnow_sample", CDNOW_SAMPLE),
    ("online_retail", ONLINE_RETAIL),
    ("shapees", SHAPEES_ORDERS),
    ("completejourney", JOURNEY_CAMPAIGNS),
    ("grocery", GROCERY),
    ("rees46_head", REES46_HEAD),
    ("taobao_head", TAOBAO_HEAD),
)


def load_dataset_dir(
    path: Path, options: CleaningOptions | None = None
) -> tuple[str, CustomerData, CleaningReport]:
    """Load a folder: a known shared dataset (recognised by its files) or a generic folder.

    A generic folder holds ``transactions.<ext>`` and optionally ``events.<ext>`` and
    ``profiles.<ext>`` (any extension :func:`~ltvcast.data.io.read_table` reads) in canonical
    column names; it is cleaned with ``options`` (e.g. the caller's ``now``). Known datasets
    keep their documented options.

    Returns
    -------
    (name, CustomerData, CleaningReport)
        The dataset name (the folder name for a generic one), the data and the report.
    """
    path = Path(path)
    if not path.is_dir():
        raise SchemaError(f"{path}: not a folder")
    for name, marker in _MARKERS:
        if next(path.glob(marker), None) is not None:
            data, report = DATASETS[name](path)
            return name, data, report
    tables = {_stem(p): p for p in sorted(path.iterdir()) if p.is_file() and table_suffix(p)}
    if "transactions" not in tables:
        known = ", ".join(marker for _, marker in _MARKERS)
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise SchemaError(
            f"{path}: no transactions file (transactions with one of {kinds}) and no known "
            f"dataset file ({known})"
        )
    data, report = load_customer_data(
        tables["transactions"],
        tables.get("events"),
        tables.get("profiles"),
        options=options or CleaningOptions(),
    )
    return path.name, data, report


def _find(data_dir: Path, folder: str, pattern: str) -> Path:
    """The file matching ``pattern`` in ``data_dir`` itself or in ``data_dir/folder``."""
    data_dir = Path(data_dir)
    for candidate in (data_dir, data_dir / folder):
        found = sorted(candidate.glob(pattern)) if candidate.is_dir() else []
        if found:
            return found[0]
    raise SchemaError(f"{data_dir}: {pattern} not found there nor in {data_dir / folder}")


def _stem(path: Path) -> str:
    return path.name[: -len(table_suffix(path))]


def _most_frequent(frame: pd.DataFrame, key: str, column: str) -> pd.DataFrame:
    """Each ``key``'s most frequent ``column`` value (ties: the alphabetically first)."""
    counts = frame.groupby([key, column], observed=True).size().reset_index(name="_n")
    counts = counts.sort_values([key, "_n", column], ascending=[True, False, True])
    return counts.drop_duplicates(key)[[key, column]].reset_index(drop=True)


def _detail(path: Path, value: str, item: str | None = None) -> pd.DataFrame:
    """``id, value[, variant]`` of one Shapees detail table."""
    usecols = ["id", value] + ([item] if item else [])
    frame = pd.read_csv(path, usecols=usecols, dtype={"id": str})
    return frame.rename(columns={value: "value"})


def _empty_transactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series(dtype="str"),
            TIMESTAMP: pd.Series(dtype=TIMESTAMP_DTYPE),
            AMOUNT: pd.Series(dtype=np.float64),
        }
    )
