"""The Typer application and the one place that turns failures into exit codes.

Exit codes: 0 success; 2 a usage error (click's own: unknown command or option, a missing
or malformed value, printed as one usage line and one error line) or an ``LTVError`` (bad
input data, configuration or model directory: one ``error:`` line); 1 an interruption or a
machine limit (out of memory), said in one line.
"""

from __future__ import annotations

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
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
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


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_app())
