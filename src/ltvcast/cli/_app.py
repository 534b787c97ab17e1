"""The Typer application and the one place that turns library errors into exit codes."""

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
)
console = Console()
err_console = Console(stderr=True)


def run_app(argv: list[str] | None = None) -> int:
    """Run the CLI; an :class:`LTVError` becomes one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except LTVError as err:
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exit_:
        return int(exit_.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except Exception as err:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        raise
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_app())
