"""L5 edge: the HTTP scoring service (FastAPI). Build it with :func:`create_app`."""

from __future__ import annotations

from ltvcast.service.routes import create_app

__all__ = ["create_app"]
