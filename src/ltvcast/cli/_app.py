"""The Typer application and the one place that turns failures into exit codes.

Exit codes: 0 success; 2 a usage error (click's own: unknown command or option, a missing
or malformed value, printed as one usage line and one error line) or an ``LTVError`` (bad
input data, configuration or model directory: one ``error:`` line); 1 an interruption or a
machine limit (out of memory), said in one line.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from ltvcast.exceptions import LTVError

app = typer.Typer(
    name="ltvcast",
    help="Forecast customer lifetime value from transactions, behaviour events and profiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)


def run_app(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (see the module docstring)."""
    try:
        app(args=argv, prog_name="ltvcast")
    except SystemExit as done:  # click's standalone mode ends every run here
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except LTVError as err:
        from rich.markup import escape  # a message's "[spark]" is text, not markup

        err_console.print(
            f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True
        )
        return 2
    except MemoryError:
        err_console.print(
            "[bold red]error:[/] out of memory: the input is too large for this machine's "
            "memory (try a smaller --as-of window or fewer files at once)",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 1
    return 0


#: numpy's OpenBLAS threads in a command, unless the environment sets them: the BTYD
#: likelihoods are sums over vectors of a few thousand to a million rows, where OpenBLAS
#: threads cost more than they save; on a loaded 2-core machine a 23,570-row dot product
#: took 8 ms with them and 3 us without, and Gamma-Gamma's fit on CDNOW 2.6 s and 0.1 s.
#: LightGBM and torch keep their own threads. Worker processes inherit it.
BLAS_THREADS = "1"


def main() -> None:
    """Console-script entry point (sets :data:`BLAS_THREADS` before numpy loads)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", BLAS_THREADS)
    sys.exit(run_app())
