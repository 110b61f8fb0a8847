"""What a run read: the data's files (sizes, content hashes) and its data-quality summary."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["data_fingerprint", "file_sha256"]

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(source: str, *, mapping: str, as_of: str | None = None) -> dict[str, Any]:
    """Describe a data source: its files and their hashes, and the rows per table.

    Parameters
    ----------
    source
        The ``--data`` value: a folder, a file or a database URL.
    mapping
        The mapping the notebooks use (rows used and excluded depend on it).
    as_of
        The as-of date, when the run sets one.

    Returns
    -------
    dict
        ``fingerprint`` (source, files with bytes and sha256, one sha256 over them all, rows read
        / used / excluded / flagged per table), ``data_quality`` (the full report) and
        ``warnings`` (the source's warnings and the views that cannot be computed on this data,
        one sentence each).

    Raises
    ------
    SalesOpsError
        The source cannot be read with this mapping (the notebooks could not either).
    """
    from ..data import validate

    report = validate(source, mapping=mapping, as_of=as_of or None)
    files = _files(Path(source))
    fingerprint = {
        "source": report.source,
        "mapping": report.mapping,
        "as_of": report.as_of,
        "files": files,
        "sha256": _combined(files) if files else None,
        "rows": _rows(report),
    }
    return {
        "fingerprint": fingerprint,
        "data_quality": report.to_dict(),
        "warnings": report.all_warnings,
    }


def _files(path: Path) -> list[dict[str, Any]]:
    """Every file of a folder source (hidden ones left out), or the one file of a file source."""
    from ..data import source_files  # the same files the prepared-data cache is keyed by

    if path.is_file():
        return [{"path": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}]
    # a database URL has nothing on disk to hash
    return [
        {
            "path": p.relative_to(path).as_posix(),
            "bytes": p.stat().st_size,
            "sha256": file_sha256(p),
        }
        for p in source_files(path)
    ]


def _combined(files: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f['path']}\0{f['sha256']}\n".encode())
    return digest.hexdigest()


def _rows(report) -> dict[str, dict[str, int]]:
    return {
        row["table"]: {
            "read": int(row["rows_read"]),
            "used": int(row["rows_used"]),
            "excluded": int(row["rows_excluded"]),
            "flagged": int(row["rows_flagged"]),
        }
        for _, row in report.summary_frame().iterrows()
    }
