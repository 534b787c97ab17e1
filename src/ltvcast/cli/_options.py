"""The input options every data-reading command shares, declared once.

:func:`input_options` adds the transactions argument and the ``--events``, ``--profiles``,
column-mapping and cleaning options to a command, and hands the command one
:class:`Inputs` object in their place. ``--covariates`` (:data:`CovariatesOpt`) turns into
model hyperparameters through :func:`model_params`.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ltvcast.cli._app import console

if TYPE_CHECKING:
    from ltvcast.data.clean import CleaningOptions, CleaningReport
    from ltvcast.data.io import ColumnMap
    from ltvcast.data.schemas import CustomerData

#: Column-mapping flag -> ColumnMap field.
_COLUMN_FLAGS = {
    "customer_col": ("customer", "Column holding the customer id."),
    "time_col": ("time", "Column holding the time."),
    "amount_col": ("amount", "Column holding the transaction amount."),
    "event_col": ("event", "Column holding the event type."),
    "order_col": ("order", "Column holding the order id."),
    "quantity_col": ("quantity", "Column holding the quantity."),
    "price_col": ("price", "Unit price column (amount = quantity x price)."),
    "item_col": ("item", "Column holding the item (product) id."),
}


def _option(name: str, kind: Any, default: Any, help_text: str) -> inspect.Parameter:
    flag = "--" + name.replace("_", "-")
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, typer.Option(flag, help=help_text)],
    )


_TRANSACTIONS = inspect.Parameter(
    "transactions",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[
        str,
        typer.Argument(
            help="Transactions file (CSV, CSV.gz or Parquet; with --engine spark also any URI "
            "Spark reads, or a folder of Parquet files).",
            show_default=False,
        ),
    ],
)
_INPUT_OPTIONS = (
    _option("events", Path | None, None, "Behaviour events file (view, click, cart ...)."),
    _option("profiles", Path | None, None, "Customer profiles file."),
    *(_option(flag, str | None, None, text) for flag, (_, text) in _COLUMN_FLAGS.items()),
    _option("returns", str, "net", "Negative amounts and cancellations: 'net' or 'drop'."),
    _option("winsorize", float | None, None, "Cap amounts at this quantile (e.g. 0.999)."),
    _option("timezone", str, "UTC", "Time zone of naive timestamps in the input."),
    _option(
        "date_format",
        str | None,
        None,
        "strftime format of the time column, e.g. '%d/%m/%Y'. Default: inferred (day/month "
        "order from the dates with a field over 12).",
    ),
    _option(
        "future_tolerance",
        str,
        "1d",
        "Rows dated more than this after now are dropped and reported (e.g. 1d, 12h).",
    ),
)
_INPUT_NAMES = ("transactions", *(p.name for p in _INPUT_OPTIONS))

#: Registered models with a ``covariates`` hyperparameter (checked by the CLI tests).
COVARIATE_MODELS = ("btyd", "pnbd")
CovariatesOpt = Annotated[
    str | None,
    typer.Option(
        "--covariates",
        help="Comma-separated profile columns that act on the purchase rate, dropout and "
        f"spend of the BTYD model ({', '.join(COVARIATE_MODELS)}; Fader & Hardie 2007). "
        "Needs --profiles.",
    ),
]


def model_params(
    models: Sequence[str],
    covariates: str | None,
    profiles: Path | None,
    *,
    intervals: bool = False,
) -> dict[str, Any]:
    """The hyperparameters ``--covariates`` asks for, checked before any work: every model
    named must have them, and the profiles must be given.

    Raises
    ------
    ConfigError
        For ``auto`` or a model without covariates, an empty list, no ``--profiles``, or
        ``intervals`` (``--intervals``: not drawn for covariate models yet).
    """
    if covariates is None:
        return {}
    from ltvcast.exceptions import ConfigError

    if intervals:
        raise ConfigError("--intervals are not available with --covariates yet")
    from ltvcast.models.registry import AUTO, forecaster_class

    columns = tuple(c.strip() for c in covariates.split(",") if c.strip())
    if not columns:
        raise ConfigError("--covariates names no column; give e.g. --covariates age,channel")
    for model in models:
        if (
            model == AUTO
            or "covariates" not in inspect.signature(forecaster_class(model)).parameters
        ):
            raise ConfigError(
                f"--covariates needs a model with covariates ({', '.join(COVARIATE_MODELS)}); "
                + (
                    "--model auto chooses among models without them"
                    if model == AUTO
                    else f"{model} has none"
                )
            )
    if profiles is None:
        names = ",".join(columns)
        raise ConfigError(f"--covariates {names} names profile columns: give --profiles")
    return {"covariates": columns}


@dataclass(frozen=True)
class Inputs:
    """The input files and how to read and clean them, as the flags gave them."""

    transactions: Path
    events: Path | None
    profiles: Path | None
    columns: ColumnMap
    options: CleaningOptions
    #: The transactions as given (a URI keeps its ``//``, which a path loses).
    location: str = ""

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> Inputs:
        """Build from the flag values :func:`input_options` collected."""
        import pandas as pd

        from ltvcast.data.clean import CleaningOptions
        from ltvcast.data.io import ColumnMap
        from ltvcast.exceptions import ConfigError

        returns = values["returns"]
        if returns not in ("net", "drop"):
            raise typer.BadParameter("--returns must be 'net' or 'drop'")
        mode: Literal["net", "drop"] = returns
        columns = ColumnMap(**{field: values[flag] for flag, (field, _) in _COLUMN_FLAGS.items()})
        text = str(values["future_tolerance"]).strip()
        try:  # pandas spells days "D" (a lower-case "d" is deprecated)
            tolerance = pd.Timedelta(text[:-1] + "D" if text.endswith("d") else text)
        except ValueError:
            raise ConfigError(
                f"--future-tolerance must be a duration such as 1d or 12h; "
                f"got {values['future_tolerance']!r}"
            ) from None
        options = CleaningOptions(
            returns=mode,
            winsorize_quantile=values["winsorize"],
            source_timezone=values["timezone"],
            date_format=values["date_format"],
            now=pd.Timestamp.now(tz="UTC"),  # the edge reads the clock: rows after it are reported
            future_tolerance=tolerance,
        )
        text = values["transactions"]
        return cls(Path(text), values["events"], values["profiles"], columns, options, text)

    def load(self, *, quiet: bool = False) -> tuple[CustomerData, CleaningReport]:
        """Read, validate and clean the files; print the cleaning report unless ``quiet``."""
        from ltvcast.data.validate import load_customer_data

        with step("Loading and validating data"):
            data, report = load_customer_data(
                self.transactions,
                self.events,
                self.profiles,
                columns=self.columns,
                options=self.options,
            )
        if not quiet:
            print_cleaning(report)
        return data, report


def input_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the shared input flags; it receives them as ``inputs: Inputs``.

    The transactions argument takes the place of the ``inputs`` parameter (so ``predict
    MODEL TRANSACTIONS`` keeps its order); the options follow the command's own.
    """
    signature = inspect.signature(command, eval_str=True)
    own = list(signature.parameters.values())
    at = [p.name for p in own].index("inputs")
    before = own[:at]
    after = own[at + 1 :]
    positional = [p for p in after if p.default is inspect.Parameter.empty]
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in after if p not in positional]
    parameters = [*before, _TRANSACTIONS, *positional]
    parameters = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        flags = {name: values.pop(name) for name in _INPUT_NAMES}
        command(inputs=Inputs.from_flags(flags), **values)

    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*parameters, *keyword, *_INPUT_OPTIONS]
    )
    return wrapper


def out_file(help_text: str) -> Any:
    """The ``--out`` option of a command that writes one file (checked before any work)."""
    return typer.Option("--out", help=help_text, callback=writable_file)


def writable_dir(value: Path | None) -> Path | None:
    """``--out`` directory check, run while the flags are parsed (before any work): the
    directory exists or can be created, and a file can be written in it."""
    if value is not None:
        _check_writable(value, value)
    return value


def writable_file(value: Path | None) -> Path | None:
    """``--out`` file check, run while the flags are parsed: not a directory, and its folder
    exists or can be created and takes a new file."""
    if value is not None:
        if value.is_dir():
            raise typer.BadParameter(f"{value} is a directory; give a file name")
        _check_writable(value, value.parent)
    return value


def _check_writable(value: Path, folder: Path) -> None:
    """Create ``folder`` if needed and write (then remove) a probe file in it."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ltvcast-probe-"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise typer.BadParameter(f"{value}: cannot write there ({reason})") from None


def print_cleaning(report: CleaningReport) -> None:
    """Print the cleaning steps that touched rows."""
    for line in report.lines():
        console.print(f"  [dim]{line}[/]", highlight=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Show a spinner with elapsed time while a step runs (on a terminal), then a check mark
    and its duration."""
    start = time.perf_counter()
    if not console.is_terminal:  # a transient spinner shows nothing there: load no rich.live
        yield
        console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - start:.1f}s)[/]")
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(message, total=None)
        yield
    console.print(f"[green]✓[/] {message} [dim]({time.perf_counter() - start:.1f}s)[/]")
