"""Small HTML building blocks shared by the widgets and their static renderings.

Every piece of user data goes through ``esc``. Styles are inline (no stylesheet, no web fonts,
no icons), so a fragment looks the same in JupyterLab, Voilà and a static HTML report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ._format import MISSING, TOO_FEW, format_value

__all__ = ["esc", "style", "html_table", "message_html", "COLORS"]

COLORS = {
    "text": "#1f2933",
    "muted": "#7b8794",
    "border": "#d9e2ec",
    "header": "#f0f4f8",
    "good": "#1f7a3d",
    "bad": "#b42318",
    "neutral": "#52606d",
    "badge": "#fff4e5",
    "badge_text": "#8a4b00",
    "error": "#fdecea",
}


def esc(value: Any) -> str:
    """``value`` as text safe to put inside HTML (quotes escaped too)."""
    return html.escape(str(value), quote=True)


def style(**props: str) -> str:
    """An inline ``style="..."`` attribute from keyword properties (``font_size`` → font-size)."""
    body = "; ".join(f"{k.replace('_', '-')}: {v}" for k, v in props.items())
    return f'style="{esc(body)}"'


def message_html(text: str, *, kind: str = "empty") -> str:
    """A boxed message: ``kind`` "empty" (neutral) or "error" (a friendly problem report)."""
    background = COLORS["error"] if kind == "error" else COLORS["header"]
    color = COLORS["bad"] if kind == "error" else COLORS["neutral"]
    css = style(
        padding="12px 16px",
        background=background,
        color=color,
        border_radius="6px",
        border=f"1px solid {COLORS['border']}",
    )
    return f'<div class="salesops-{kind}" {css}>{esc(text)}</div>'


def html_table(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    currency: str | None = None,
    small_rows: Sequence[bool] | None = None,
    blank_columns: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> str:
    """``frame`` as an HTML table: values formatted by ``kinds``, everything escaped.

    Rows where ``small_rows`` is True are greyed, and their ``blank_columns`` cells show
    "too few to say" (with the number kept in the cell's tooltip).
    """
    labels = labels or {}
    th = style(
        text_align="left",
        padding="4px 8px",
        background=COLORS["header"],
        border_bottom=f"1px solid {COLORS['border']}",
        white_space="nowrap",
    )
    head = "".join(f"<th {th}>{esc(labels.get(c, c))}</th>" for c in frame.columns)
    numeric = {c for c in frame.columns if kinds.get(c, "text") not in ("text", "date")}
    small_rows = list(small_rows) if small_rows is not None else [False] * len(frame)
    body = []
    for small, row in zip(small_rows, frame.itertuples(index=False, name=None), strict=True):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            text = format_value(value, kinds.get(col, "text"), currency=currency)
            align = "right" if col in numeric else "left"
            td = style(padding="3px 8px", text_align=align, white_space="nowrap")
            if small and col in blank_columns and text != MISSING:
                cells.append(f'<td {td} title="{esc(text)}"><em>{TOO_FEW}</em></td>')
            else:
                cells.append(f"<td {td}>{esc(text)}</td>")
        color = COLORS["muted"] if small else COLORS["text"]
        attrs = f'class="salesops-small-n" {style(color=color)}' if small else style(color=color)
        body.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    table_css = style(border_collapse="collapse", font_size="13px", color=COLORS["text"])
    return (
        f'<table class="salesops-table" {table_css}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
