"""The one exception family for user-facing problems.

Every message names the file (or table), the column or parameter, and the fix.
"""

from __future__ import annotations

__all__ = [
    "SalesOpsError",
    "DataSourceError",
    "MappingError",
    "SchemaError",
    "NoUsableDataError",
    "MissingDataError",
    "ParameterError",
    "GoalsError",
]


class SalesOpsError(Exception):
    """Base class for every problem a user can fix by changing input or parameters."""


class DataSourceError(SalesOpsError):
    """A file, sheet, table or database could not be found or read."""


class MappingError(SalesOpsError):
    """A mapping preset or YAML mapping file is unknown or malformed."""


class SchemaError(SalesOpsError):
    """A required column is missing from a source table."""


class NoUsableDataError(SalesOpsError):
    """A required table has no row that could be parsed and used."""


class MissingDataError(SalesOpsError):
    """An analysis needs an optional table or column that the data does not have."""


class ParameterError(SalesOpsError):
    """A parameter has an unknown name, a wrong type or a value out of range."""


class GoalsError(SalesOpsError):
    """A goals file is unreadable, or a goal in it names an unknown KPI, a bad date or a target
    on the wrong side of its baseline."""
