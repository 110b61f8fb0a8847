"""Export what the view shows: the table as CSV or XLSX, the chart as PNG or SVG.

Text cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a
carriage return) get a leading apostrophe: an exported file cannot run a formula (OWASP,
"CSV injection"). Numbers are never touched.

Downloads are ``<a download="..." href="data:...;base64,...">`` links: they need no server
endpoint, so they work in Voilà, JupyterLab and a static page alike.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from ..errors import ParameterError, SalesOpsError
from ._html import COLORS, esc, message_html, style
from ._table import DataTable

__all__ = [
    "ExportBar",
    "FORMULA_TRIGGERS",
    "data_uri",
    "download_link",
    "neutralize_formulas",
    "to_csv_bytes",
    "to_xlsx_bytes",
]

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MIME = {
    "csv": "text/csv;charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
    "svg": "image/svg+xml",
}
# data: links much larger than this are unreliable in browsers
MAX_LINK_BYTES = 20 * 1024 * 1024


def _neutral(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (and column names) cannot run as spreadsheet formulas.

    Examples
    --------
    >>> neutralize_formulas(pd.DataFrame({"a": ["=1+1", "ok"], "b": [-2, 3]})).to_dict("list")
    {'a': ["'=1+1", 'ok'], 'b': [-2, 3]}
    """
    out = df.copy()
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.CategoricalDtype):
            if any(_neutral(c) != c for c in s.cat.categories):
                out.isetitem(i, s.astype(object).map(_neutral))
        elif pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
            out.isetitem(i, s.map(_neutral, na_action="ignore"))
    out.columns = [_neutral(c) for c in out.columns]
    return out


def _excel_ready(df: pd.DataFrame) -> pd.DataFrame:
    out = neutralize_formulas(df)
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.DatetimeTZDtype):  # Excel has no time zones
            out.isetitem(i, s.dt.tz_localize(None))
    return out


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as CSV (UTF-8 with a BOM, so Excel reads accents right), formulas neutralized.

    Rows end with CRLF (RFC 4180), so a text cell holding a bare CR or LF is quoted.
    """
    return neutralize_formulas(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def to_xlsx_bytes(df: pd.DataFrame, *, sheet_name: str = "data") -> bytes:
    """``df`` as an Excel workbook (openpyxl), formulas neutralized."""
    sheet = re.sub(r"[\[\]:*?/\\]", "_", sheet_name)[:31] or "data"
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        _excel_ready(df).to_excel(writer, index=False, sheet_name=sheet)
    return buffer.getvalue()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "export"


def data_uri(payload: bytes, fmt: str) -> str:
    """``payload`` as a base64 ``data:`` URI of the format's MIME type."""
    return f"data:{MIME[fmt]};base64,{base64.b64encode(payload).decode('ascii')}"


def download_link(href: str, filename: str) -> str:
    """An ``<a download>`` link to ``href`` (a data URI), saved as ``filename``."""
    css = style(margin_right="12px", color="#0b5cad")
    return f'<a download="{esc(filename)}" href="{esc(href)}" {css}>Download {esc(filename)}</a>'


class ExportBar(w.VBox):
    """Buttons that prepare downloads of the current table (CSV, Excel) and chart (PNG, SVG).

    A click builds the file from what is shown now and puts its download link below the
    buttons; a change of the table or the chart clears the links, so a link is never stale.

    Parameters
    ----------
    table
        The DataTable whose rows (all of them, in the current order) are exported.
    chart
        The ChartView whose chart is exported.
    name
        The file name, without extension.
    """

    name = t.Unicode("export", help="File name of the downloads, without extension.")
    table = t.Instance(DataTable, allow_none=True, help="The table exported as CSV/XLSX.")
    chart = t.Instance(
        "salesops_widgets.widgets._chart.ChartView",  # by name: no altair import until used
        allow_none=True,
        help="The chart exported as PNG/SVG.",
    )
    links = t.Dict(read_only=True, help="File name -> data URI of the links prepared.")

    def __init__(
        self,
        table: DataTable | None = None,
        chart: Any = None,
        name: str = "export",
        **kwargs: Any,
    ) -> None:
        self._buttons = {
            fmt: w.Button(description=label, tooltip=f"Prepare a {label} download")
            for fmt, label in (("csv", "CSV"), ("xlsx", "Excel"), ("png", "PNG"), ("svg", "SVG"))
        }
        for fmt, button in self._buttons.items():
            button.on_click(lambda _, fmt=fmt: self.prepare(fmt))
        self._links = w.HTML()
        self._row = w.HBox(layout=w.Layout(align_items="center"))
        super().__init__(children=[self._row, self._links], **kwargs)
        self.name = name
        self.table = table
        self.chart = chart
        self._update()

    @t.observe("table", "chart")
    def _on_sources(self, change: dict) -> None:
        if change["old"] is not None:
            change["old"].unobserve(self._on_content)
        if change["new"] is not None:
            names = ["data", "sort_by", "ascending"] if change["name"] == "table" else ["chart"]
            change["new"].observe(self._on_content, names=names)
        self._update()

    def _on_content(self, change: dict) -> None:
        self.set_trait("links", {})
        self._update()

    @t.observe("name")
    def _on_name(self, change: dict) -> None:
        self.set_trait("links", {})
        self._update()

    def _update(self) -> None:
        formats = (["csv", "xlsx"] if self.table is not None else []) + (
            ["png", "svg"] if self.chart is not None else []
        )
        label = w.HTML(f"<span {style(color=COLORS['neutral'])}>Export:</span>")
        self._row.children = [label, *(self._buttons[f] for f in formats)]
        self._links.value = "".join(download_link(href, name) for name, href in self.links.items())

    def payload(self, fmt: str) -> bytes:
        """The bytes of the file ``fmt`` (csv, xlsx, png, svg) for what is shown now."""
        if fmt not in MIME:
            raise ParameterError(f"format {fmt!r} is not one of {', '.join(MIME)}.")
        if fmt in ("csv", "xlsx"):
            if self.table is None:
                raise ParameterError("this export bar has no table to export.")
            frame = self.table.sorted_data()
            return to_csv_bytes(frame) if fmt == "csv" else to_xlsx_bytes(frame)
        if self.chart is None or self.chart.chart is None:
            raise ParameterError("there is no chart to export (nothing matches the filters).")
        from ..charts import to_png, to_svg

        if fmt == "svg":
            return to_svg(self.chart.chart).encode("utf-8")
        return to_png(self.chart.chart)

    def prepare(self, fmt: str) -> str:
        """Build the ``fmt`` file and show its download link; returns the file name."""
        filename = f"{_slug(self.name)}.{fmt}"
        try:
            data = self.payload(fmt)
            if len(data) > MAX_LINK_BYTES:
                raise ParameterError(
                    f"{filename} is {len(data) / 2**20:.0f} MB, too large for a download link; "
                    f"narrow the filters, or export from code with to_{fmt}_bytes."
                )
        except SalesOpsError as exc:
            self._links.value = message_html(str(exc), kind="error")
            return filename
        self.set_trait("links", {**self.links, filename: data_uri(data, fmt)})
        self._update()
        return filename
