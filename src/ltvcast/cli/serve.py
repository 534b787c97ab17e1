"""``ltvcast serve``: run the HTTP scoring service (FastAPI + uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ltvcast.cli._app import app, err_console
from ltvcast.exceptions import ConfigError

TOKEN_ENV = "LTVCAST_API_TOKEN"


@app.command()
def serve(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by `ltvcast train`.")],
    db: Annotated[
        Path, typer.Option("--db", help="DuckDB store of events (created when absent).")
    ] = Path("ltvcast.duckdb"),
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help=f"File holding the API token (else ${TOKEN_ENV})."),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Run without an API token (local testing only).")
    ] = False,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="Largest request body accepted.")
    ] = 8 * 1024 * 1024,
    max_batch: Annotated[
        int, typer.Option("--max-batch", help="Most events per POST /v1/events.")
    ] = 10_000,
    max_future_seconds: Annotated[
        float,
        typer.Option(
            "--max-future-seconds",
            help="Refuse events dated more than this after the server's clock.",
            min=0,
        ),
    ] = 900.0,
) -> None:
    """Serve forecasts over HTTP: POST /v1/events, GET /v1/customers/{id}, POST /v1/score.

    Every /v1 route needs `Authorization: Bearer <token>`; SIGHUP or POST /v1/admin/reload
    swaps in the model directory's current model.
    """
    token = _token(token_file)
    if token is None and not insecure:
        raise ConfigError(
            f"no API token: pass --token-file or set ${TOKEN_ENV} (or --insecure to run "
            "without authentication)"
        )
    if token is None:
        err_console.print(
            "[bold yellow]warning:[/] running WITHOUT authentication (--insecure); "
            "anyone who can reach the port can read forecasts and write events"
        )
    import pandas as pd
    import uvicorn

    from ltvcast.service import create_app

    application = create_app(
        model_dir,
        db,
        token=token,
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
        max_future=pd.Timedelta(seconds=max_future_seconds),
        handle_sighup=True,
    )
    err_console.print(f"ltvcast serving {model_dir} on http://{host}:{port} (docs: /docs)")
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"--token-file {token_file}: cannot read ({err.strerror})") from err
        if not token:
            raise ConfigError(f"--token-file {token_file}: the file is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None
