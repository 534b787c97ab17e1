"""L5 edge: the ``ltvcast`` command line (Typer). Each submodule registers its commands on
:data:`ltvcast.cli._app.app`; this package imports them all."""

from __future__ import annotations

from ltvcast.cli import core as core
from ltvcast.cli import recommend as recommend
from ltvcast.cli import serve as serve
from ltvcast.cli import strategy as strategy
from ltvcast.cli._app import app, main, run_app

__all__ = ["app", "main", "run_app"]
