"""Where runs are written: one folder per run, published by an atomic rename.

::

    OUT/<notebook>/<stamp>/           a good run: <notebook>.ipynb, <notebook>.html, manifest.json
    OUT/<notebook>/latest             -> <stamp> of the last good run (a symlink, or a small file)
    OUT/<notebook>/failed/<stamp>/    a failed run: the executed notebook as far as it got, manifest
    OUT/<notebook>/.tmp-*             a run being written (never read; removed when it ends)

A reader of ``latest`` or of any ``<stamp>/`` folder never sees a half-written run.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

__all__ = ["stamp", "scratch_dir", "publish", "point_latest", "read_latest"]

LATEST = "latest"
FAILED = "failed"


def stamp(moment: dt.datetime | None = None) -> str:
    """A folder name for a run started at ``moment`` (UTC), e.g. ``20261122T070000Z``."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def scratch_dir(notebook_dir: Path, run_stamp: str) -> Path:
    """A new folder next to where the run will be published (same file system, so the final
    rename is atomic), with the permissions the umask gives."""
    scratch = notebook_dir / f".tmp-{run_stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    return scratch


def publish(scratch: Path, parent: Path, run_stamp: str) -> Path:
    """Rename ``scratch`` to ``parent/<stamp>`` (``<stamp>-2``, ... if taken) and return it."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        target = parent / (run_stamp if n == 1 else f"{run_stamp}-{n}")
        try:
            scratch.rename(target)  # atomic; fails if target exists and is not empty
        except OSError:
            if target.exists():
                continue
            raise
        return target
    raise FileExistsError(f"{parent / run_stamp}: too many runs with this timestamp")


def point_latest(notebook_dir: Path, name: str) -> None:
    """Point ``notebook_dir/latest`` at ``name`` atomically: a symlink, or a file holding it."""
    link = notebook_dir / LATEST
    tmp = notebook_dir / f".{LATEST}-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(name, target_is_directory=True)
    except OSError:  # no symlinks here (some Windows setups): a small file instead
        tmp.write_text(name + "\n")
    os.replace(tmp, link)


def read_latest(notebook_dir: Path) -> Path | None:
    """The folder of the last good run of a notebook, or None when there is none yet."""
    link = notebook_dir / LATEST
    if link.is_symlink():
        return notebook_dir / os.readlink(link)
    if link.is_file():
        return notebook_dir / link.read_text().strip()
    return None
