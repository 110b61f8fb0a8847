"""The index page's list of dashboards: a title and one line for each notebook."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

__all__ = ["describe", "dashboards"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*_(\"])")
_MARKUP = re.compile(r"[*`]+|\[([^\]]*)\]\([^)]*\)")


def describe(nb: nbformat.NotebookNode, fallback: str) -> dict[str, str]:
    """A notebook's title (first ``#`` heading) and line (first sentence of the first paragraph
    of its first markdown cell), markup removed.

    Parameters
    ----------
    nb
        The notebook.
    fallback
        The title when the notebook has no heading (its file name, say).

    Returns
    -------
    dict
        ``{"title": ..., "line": ...}``; ``line`` is empty when there is no markdown text.
    """
    cell = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if cell is None:
        return {"title": fallback, "line": ""}
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", cell.source) if p.strip()]
    headings = [p for p in paragraphs if p.startswith("#")]
    text = [p for p in paragraphs if not p.startswith("#")]
    title = _plain(headings[0].lstrip("#")) if headings else fallback
    line = _SENTENCE_END.split(_plain(text[0]), maxsplit=1)[0] if text else ""
    return {"title": title, "line": line}


def dashboards(folder: Path) -> dict[str, dict[str, str]]:
    """``{file name: {"title", "line"}}`` for every notebook of ``folder``; unreadable ones
    are listed by name only."""
    found = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            found[path.name] = describe(nbformat.read(path, as_version=4), path.stem)
        except (OSError, ValueError):
            found[path.name] = {"title": path.stem, "line": ""}
    return found


def _plain(text: str) -> str:
    """Markdown to one line of plain text: emphasis and code marks dropped, links to their
    text, whitespace collapsed."""
    text = _MARKUP.sub(lambda m: m.group(1) or "", text)
    return " ".join(text.split())
