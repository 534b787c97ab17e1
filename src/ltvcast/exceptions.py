"""The ltvcast exception tree.

::

    LTVError
     ├── SchemaError(ValueError)      input table breaks the data contract
     ├── ConfigError(ValueError)      a parameter (horizon, as_of, flag) is invalid
     ├── InsufficientDataError        too little history for what was asked
     ├── NotFittedError(AttributeError)  predict before fit
     ├── ArtifactError                model directory missing, corrupt or from another version
     └── StoreError                   the embedded store cannot be opened, or is no longer there

The CLI turns any ``LTVError`` into one line on stderr and exit code 2; the service into a
4xx JSON body with the same text (503 for a ``StoreError``: nothing is acknowledged).
"""

from __future__ import annotations


class LTVError(Exception):
    """Base class of every error ltvcast raises on purpose."""


class SchemaError(LTVError, ValueError):
    """An input table breaks the data contract (missing column, unparsable values, empty)."""


class ConfigError(LTVError, ValueError):
    """A parameter such as a horizon, an as-of time or a model name is invalid."""


class InsufficientDataError(LTVError):
    """The data holds too little history for the requested fit or backtest."""


class NotFittedError(LTVError, AttributeError):
    """An estimator was used before ``fit``."""


class ArtifactError(LTVError):
    """A model directory is missing, corrupt, or was written by an incompatible version."""


class StoreError(LTVError):
    """The embedded DuckDB store cannot be opened (locked, corrupt, not a database) or its
    file was removed or replaced while in use."""
