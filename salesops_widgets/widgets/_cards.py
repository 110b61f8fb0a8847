"""KPI cards: value, change against a comparison period, interval, and "too few to say"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from .._catalog import CATALOGUE
from ..data._populations import population_of
from ..errors import ParameterError
from ._format import TOO_FEW, format_delta, format_value, is_missing
from ._html import COLORS, esc, style
from ._static import static_mimebundle

__all__ = ["KPI_CARDS", "KPICards", "cards_from_kpis"]

CARD_KINDS = ("money", "percent", "days", "count", "ratio", "number")
_CARD_KEYS = {
    "label": None,
    "value": None,
    "kind": "number",
    "currency": None,
    "delta": None,
    "low": None,
    "high": None,
    "small_n": False,
    "note": "",
    "better": "higher",
    "population": "",  # what the KPI counts, shown under it: "won deals with an amount"
}
_BETTER = ("higher", "lower", "neutral")

# The default cards, from the columns of metrics.segment_kpis, as the one KPI catalogue names
# and formats them. "small_n": the card is a rate or an average of closed deals, whose number is
# not to be trusted when the row is small_n (< 30 closed deals).
_DEFAULT_CARDS = (
    "opportunities",
    "win_rate",
    "bookings",
    "asp",
    "km_median_days_to_close",
    "portfolio_discount",
    "velocity",
    "open_pipeline",
)
KPI_CARDS: tuple[dict[str, Any], ...] = tuple(CATALOGUE[c].card() for c in _DEFAULT_CARDS)
_SPEC_KEYS = {"column", "label", "kind", "low", "high", "small_n", "better", "note"}


def _number(value: Any) -> float | None:
    return None if is_missing(value) else float(value)


def _bound(row: pd.Series, column: str | None) -> float | None:
    return _number(row[column]) if column is not None and column in row.index else None


def _spec_entry(item: str | Mapping[str, Any]) -> dict[str, Any]:
    """A card spec completed from the KPI catalogue (a column name alone is its entry)."""
    item = {"column": item} if isinstance(item, str) else dict(item)
    unknown = set(item) - _SPEC_KEYS
    if "column" not in item or unknown:
        raise ParameterError(
            f"card spec {item!r} needs 'column' and may have only {', '.join(sorted(_SPEC_KEYS))}."
        )
    known = CATALOGUE.get(item["column"])
    return {**(known.card() if known else {"label": item["column"].replace("_", " ")}), **item}


def _spec_entries(spec: Sequence[Any] | None) -> tuple[list[dict[str, Any]], bool]:
    if spec is None:
        return [dict(s) for s in KPI_CARDS], False
    return [_spec_entry(item) for item in spec], True


def cards_from_kpis(
    current: pd.Series,
    previous: pd.Series | None = None,
    spec: Sequence[Any] | None = None,
    *,
    currency: str | None = None,
    report: Any = None,
) -> list[dict[str, Any]]:
    """Card dicts for ``KPICards.cards`` from a row of ``metrics.segment_kpis``.

    Parameters
    ----------
    current
        The row for the selection (e.g. ``segment_kpis(data, **bar.selection).iloc[0]``).
    previous
        The same row for the comparison period, or None (no deltas).
    spec
        Which cards: column names (as the KPI catalogue shows them, for known columns) or dicts
        with ``column``, ``label``, ``kind``, ``low``/``high`` (interval columns), ``small_n``
        (True: hide the number when the row is small_n), ``better`` and ``note``. Default:
        ``KPI_CARDS``, leaving out the columns the row does not have.
    currency
        For money cards (e.g. ``data.base_currency``).
    report
        The data's ``QualityReport``: a card whose KPI cannot be computed on this data says
        why in words (its view warning) instead of showing a dash.

    Returns
    -------
    list of dict
        ``delta`` is current − previous (percentage points for percentages); it is None when
        either side is missing or too small to say.
    """
    entries, explicit = _spec_entries(spec)
    row_small = bool(current.get("small_n", False))
    prev_small = previous is not None and bool(previous.get("small_n", False))
    cards = []
    for entry in entries:
        column = entry["column"]
        if column not in current.index:
            if explicit:
                raise ParameterError(
                    f"card column {column!r} is not in the KPI row (columns: "
                    f"{', '.join(map(str, current.index))})."
                )
            continue
        small = bool(entry.get("small_n", False)) and row_small
        value = _number(current[column])
        delta = None
        both_trusted = not small and not (entry.get("small_n") and prev_small)
        if previous is not None and column in previous.index and both_trusted:
            before = _number(previous[column])
            if value is not None and before is not None:
                delta = value - before
        note = entry.get("note", "")
        if small and "closed" in current.index and not note:
            closed = int(current["closed"])
            note = f"{closed:,} closed deal{'' if closed == 1 else 's'}"
        why = report.warnings_for(column) if report is not None and value is None else []
        if why:
            note = why[0]
        cards.append(
            {
                "label": entry.get("label", column),
                "value": value,
                "kind": entry.get("kind", "number"),
                "currency": currency,
                "delta": delta,
                "low": _bound(current, entry.get("low")),
                "high": _bound(current, entry.get("high")),
                "small_n": small,
                "note": note,
                "better": entry.get("better", "higher"),
                "population": population_of(column) or "",
            }
        )
    return cards


def _delta_html(card: Mapping[str, Any]) -> str:
    delta = card["delta"]
    if delta is None:
        return ""
    if delta == 0:
        arrow, color = "●", COLORS["neutral"]
    else:
        arrow = "▲" if delta > 0 else "▼"
        good = (delta > 0) == (card["better"] == "higher")
        color = (
            COLORS["neutral"] if card["better"] == "neutral" else COLORS["good" if good else "bad"]
        )
    text = format_delta(delta, card["kind"], currency=card["currency"])
    css = style(color=color, font_size="12px")
    return f'<div class="salesops-delta" {css}>{arrow} {esc(text)} vs previous period</div>'


def card_html(card: Mapping[str, Any]) -> str:
    """One card as HTML (escaped)."""
    kind, currency = card["kind"], card["currency"]
    value = format_value(card["value"], kind, currency=currency, compact=True)
    muted = style(color=COLORS["muted"], font_size="12px")
    parts = [f"<div {style(font_size='12px', color=COLORS['neutral'])}>{esc(card['label'])}</div>"]
    if card["small_n"]:
        badge = style(
            display="inline-block",
            margin="4px 0",
            padding="2px 8px",
            border_radius="10px",
            background=COLORS["badge"],
            color=COLORS["badge_text"],
            font_weight="600",
        )
        parts.append(f'<div class="salesops-badge" {badge}>{TOO_FEW}</div>')
        parts.append(f"<div {muted}>(point estimate {esc(value)})</div>")
    else:
        big = style(font_size="24px", font_weight="600", color=COLORS["text"])
        parts.append(f'<div class="salesops-value" {big}>{esc(value)}</div>')
        parts.append(_delta_html(card))
    if card["low"] is not None and card["high"] is not None:
        low = format_value(card["low"], kind, currency=currency, compact=True)
        high = format_value(card["high"], kind, currency=currency, compact=True)
        parts.append(f"<div {muted}>95% interval {esc(low)} – {esc(high)}</div>")
    if card["note"]:
        parts.append(f"<div {muted}>{esc(card['note'])}</div>")
    if card.get("population"):
        parts.append(f'<div class="salesops-population" {muted}>of {esc(card["population"])}</div>')
    box = style(
        min_width="150px",
        padding="10px 14px",
        border=f"1px solid {COLORS['border']}",
        border_radius="8px",
        background="#ffffff",
    )
    return f'<div class="salesops-card" {box}>{"".join(parts)}</div>'


class KPICards(w.VBox):
    """A row of KPI cards: value, change (▲/▼, colored by whether it is good), 95% interval,
    and a "too few to say" badge instead of a confident number when n is small.

    Examples
    --------
    >>> KPICards(cards=[{"label": "Win rate", "value": 0.31, "kind": "percent"}]).cards[0]["kind"]
    'percent'
    """

    cards = t.List(
        t.Dict(),
        help="Cards: dicts of label, value, kind (money/percent/days/count/ratio/number), "
        "currency, delta, low, high, small_n, note, better (higher/lower/neutral).",
    )

    def __init__(self, cards: Sequence[Mapping[str, Any]] = (), **kwargs: Any) -> None:
        self._html = w.HTML()
        super().__init__(children=[self._html], **kwargs)
        self.cards = list(cards)
        self._update()

    @t.validate("cards")
    def _valid_cards(self, proposal: dict) -> list[dict[str, Any]]:
        out = []
        for card in proposal["value"]:
            unknown = set(card) - set(_CARD_KEYS)
            if unknown or not card.get("label"):
                raise ParameterError(
                    f"KPI card {dict(card)!r} needs a label and may have only the keys "
                    f"{', '.join(_CARD_KEYS)} (unknown: {', '.join(sorted(unknown)) or 'none'})."
                )
            full = {**_CARD_KEYS, **card}
            if full["kind"] not in CARD_KINDS:
                raise ParameterError(
                    f"KPI card {full['label']!r} has kind={full['kind']!r}; use one of "
                    f"{', '.join(CARD_KINDS)}."
                )
            if full["better"] not in _BETTER:
                raise ParameterError(
                    f"KPI card {full['label']!r} has better={full['better']!r}; use one of "
                    f"{', '.join(_BETTER)}."
                )
            for key in ("value", "delta", "low", "high"):
                full[key] = _number(full[key])
            full["small_n"] = bool(full["small_n"])
            out.append(full)
        return out

    @t.observe("cards")
    def _on_change(self, change: dict) -> None:
        self._update()

    def _update(self) -> None:
        self._html.value = self.to_static_html()

    def to_static_html(self) -> str:
        row = style(display="flex", flex_wrap="wrap", gap="10px")
        cards = "".join(card_html(card) for card in self.cards)
        return f'<div class="salesops-cards" {row}>{cards}</div>'

    _repr_mimebundle_ = static_mimebundle
