"""Helpers shared by the chart builders: checks, inline data, titles, tooltips, selections."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import pandas as pd

from .._catalog import TOO_FEW  # the one "too few to say" text
from ..errors import ParameterError
from ._theme import INK, MUTED, PRIMARY, SMALL_N_GREY, Kind

__all__ = ["EMPTY_MESSAGE", "TOO_FEW", "empty_chart"]

EMPTY_MESSAGE = "No deals match these filters"
Sort = str | Sequence[Any] | None


def empty_chart(message: str = EMPTY_MESSAGE, *, title: str | None = None) -> alt.Chart:
    """A chart that only says ``message``: what a builder returns for an empty frame.

    Parameters
    ----------
    message : str
        The sentence to show, e.g. ``"No deals match these filters"``.
    title : str, optional
        The title the chart would have had, so a dashboard keeps its layout.

    Returns
    -------
    altair.Chart
        A text chart; ``to_dict()["usermeta"]`` is ``{"empty": True, "message": message}``,
        so a widget can tell it from a chart with data.

    Examples
    --------
    >>> spec = empty_chart("No deals match these filters").to_dict()
    >>> spec["mark"]["type"], spec["encoding"]["text"]["field"]
    ('text', 'message')
    """
    chart = alt.Chart({"values": [{"message": message}]}).mark_text(
        fontSize=14, color=MUTED, align="center", baseline="middle"
    )
    chart = chart.encode(
        text=alt.Text("message:N"),
        x=alt.value(240),
        y=alt.value(50),
    ).properties(width=480, height=100, usermeta={"empty": True, "message": message})
    return chart.properties(title=title) if title else chart


def is_empty(df: pd.DataFrame, value: str | None = None) -> bool:
    """True when there is nothing to draw: no row, or no defined ``value``."""
    if df is None or len(df) == 0:
        return True
    return value is not None and value in df.columns and bool(df[value].isna().all())


def require(df: pd.DataFrame, **columns: str | None) -> None:
    """Raise ``ParameterError`` unless every named column (parameter=column) is in ``df``."""
    for parameter, column in columns.items():
        if column is not None and column not in df.columns:
            have = ", ".join(map(str, df.columns))
            msg = (
                f"chart parameter {parameter}={column!r}: no such column in the frame "
                f"(its columns are: {have}); pass the name of one of them"
            )
            raise ParameterError(msg)


def inline(df: pd.DataFrame, columns: Iterable[str | None]) -> dict:
    """The chosen columns as inline records (NaN → null, dates → ISO text), never a URL."""
    keep = list(dict.fromkeys(c for c in columns if c is not None))
    return {"values": json.loads(df.loc[:, keep].to_json(orient="records", date_format="iso"))}


def humanize(column: str) -> str:
    """``"win_rate"`` → ``"Win rate"``: a default title from a column name."""
    text = str(column).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def order(df: pd.DataFrame, column: str) -> list:
    """The distinct values of ``column`` in the frame's order (categoricals: category order)."""
    series = df[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        present = set(series.dropna())
        return [c for c in series.cat.categories.tolist() if c in present]
    return series.dropna().drop_duplicates().tolist()


def category_sort(df: pd.DataFrame, category: str, value: str, sort: Sort) -> dict:
    """Keyword arguments for a category channel: sorted by ``value`` ("-x"/"x") or as given."""
    if sort in ("-x", "-y", "x", "y"):
        direction = "descending" if sort.startswith("-") else "ascending"
        return {"sort": alt.EncodingSortField(field=value, op="max", order=direction)}
    if sort is None:
        return {"sort": None, "scale": alt.Scale(domain=order(df, category))}
    if isinstance(sort, str):
        msg = f'chart parameter sort={sort!r} is unknown; use "-x", "x", None or a list'
        raise ParameterError(msg)
    return {"sort": list(sort)}


def chart_title(text: str, subtitle: Sequence[str] = ()) -> alt.Title:
    """The chart title, with subtitle lines (e.g. what the grey or the dashed line means)."""
    lines = [s for s in subtitle if s]
    return alt.Title(text, subtitle=lines) if lines else alt.Title(text)


def tip(field: str, label: str, kind: Kind | None = None, *, diff: bool = False) -> alt.Tooltip:
    """A tooltip entry: quantitative and formatted when ``kind`` is given, else nominal."""
    if kind is None:
        return alt.Tooltip(f"{field}:N", title=label)
    fmt = kind.diff_format if diff else kind.tooltip_format
    return alt.Tooltip(f"{field}:Q", title=label, format=fmt)


def small_n_test(small_n: str) -> str:
    """The Vega expression that is true on a "too few to say" row."""
    return f"datum[{json.dumps(small_n)}] === true"


def with_note(df: pd.DataFrame, small_n: str | None) -> pd.DataFrame:
    """A copy of ``df`` with a ``_note`` column: "too few to say" on small-n rows."""
    out = df.copy()
    if small_n is None:
        out["_note"] = ""
    else:
        out["_note"] = out[small_n].fillna(False).astype(bool).map({True: TOO_FEW, False: ""})
    return out


def small_n_subtitle(df: pd.DataFrame, small_n: str | None) -> str:
    """The subtitle line that explains the grey, when some row is small-n."""
    if small_n is None or not df[small_n].fillna(False).astype(bool).any():
        return ""
    return "Grey: too few deals to say"


def fill(small_n: str | None, *, color: Any = None) -> Any:
    """Colour channel: grey on small-n rows, else ``color`` (a channel or the primary colour)."""
    otherwise = color if color is not None else alt.value(PRIMARY)
    if small_n is None:
        return otherwise
    return alt.when(small_n_test(small_n)).then(alt.value(SMALL_N_GREY)).otherwise(otherwise)


def point_selection(name: str | None, fields: Sequence[str]) -> alt.Parameter | None:
    """A named click selection on ``fields`` (``jc.selections.<name>``), or None."""
    if name is None:
        return None
    return alt.selection_point(name=name, fields=list(fields), on="click", clear="dblclick")


def highlight(selection: alt.Parameter | None) -> Any:
    """Opacity channel: selected items stay opaque, the others fade (all opaque if none)."""
    if selection is None:
        return alt.value(1)
    return alt.when(selection, empty=True).then(alt.value(1)).otherwise(alt.value(0.35))


def with_selection(chart: alt.Chart, selection: alt.Parameter | None) -> alt.Chart:
    """``chart`` with the selection parameter and its highlight (unchanged when None)."""
    if selection is None:
        return chart
    return chart.add_params(selection).encode(opacity=highlight(selection))


def reference_rule(
    value: float, kind: Kind, *, axis_title: str, label: str, channel: str = "x"
) -> alt.Chart:
    """A dashed rule at ``value`` (e.g. the overall average) across the plot, with its tooltip.

    ``channel="x"`` draws a vertical rule (value on the x axis), ``"y"`` a horizontal one.
    """
    data = {"values": [{"reference": value}]}
    position = alt.X if channel == "x" else alt.Y
    return (
        alt.Chart(data)
        .mark_rule(strokeDash=[5, 4], color=INK, size=1.5)
        .encode(
            position("reference:Q", title=axis_title),
            tooltip=[tip("reference", label, kind)],
        )
    )


def dark_cells(values: pd.Series, threshold: float = 0.6) -> pd.Series:
    """True where a sequential colour is dark enough to need white text."""
    low, high = values.min(), values.max()
    if pd.isna(low) or high == low:
        return pd.Series(False, index=values.index)
    return ((values - low) / (high - low) > threshold).fillna(False)
