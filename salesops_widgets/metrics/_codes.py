"""The small-integer codes the kept deals table stores next to its text and flags.

A leaf module: plain Ibis and numpy, nothing of the package. What the codes are for, and when
they are built (the embedded engine only), is in :mod:`._deals` and :mod:`._engine`.

- **Dictionary codes.** For each dimension with at most :data:`MAX_CODES` labels, ``_c_<dim>``
  holds the position of the deal's label in the dimension's sorted labels (:func:`labels_of`,
  :func:`with_code`). Comparing and grouping small integers is several times faster than text.
- **Outcome code.** ``_outcome`` packs ``is_closed``, ``is_won`` and "has a list price"
  losslessly, NULLs included (:func:`outcome_code`, :func:`decode_outcome`).
- **Band index.** ``_discount_band`` is the deal's band among the default discount bands
  (:func:`band_index`).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "MAX_CODES",
    "NOT_SET",
    "band_index",
    "code_column",
    "decode_outcome",
    "label",
    "labels_of",
    "outcome_code",
    "with_code",
]

NOT_SET = "(not set)"
# A dimension with more labels than this (e.g. account names) keeps only its label column.
MAX_CODES = 65_536
# The kept deals table's keys besides the dimension codes.
KEY_COLUMNS = ("_outcome", "_won_duration", "_discount_band")


def code_column(dim: str) -> str:
    """The name of a dimension's dictionary-code column in the kept deals table."""
    return f"_c_{dim}"


def label(value: ibis.Value) -> ibis.StringValue:
    """A dimension value as the deals view shows it: text, with NULL as NOT_SET."""
    return value.cast("string").fill_null(NOT_SET)


def labels_of(table: ibis.Table, column: str) -> tuple[str, ...] | None:
    """Every label a column can show (NOT_SET always among them), in the engine's order; None
    when there are more than MAX_CODES."""
    values = table.select(_label=label(table[column]))
    values = values.union(ibis.memtable({"_label": [NOT_SET]}), distinct=True)
    found = values.order_by("_label").limit(MAX_CODES + 1).execute()["_label"]
    return tuple(found) if len(found) <= MAX_CODES else None


def with_code(t: ibis.Table, value: ibis.Value, name: str, labels: Sequence[str]) -> ibis.Table:
    """``t`` plus the column ``name``: the position of ``value`` (on ``t``) in ``labels``."""
    codes = np.arange(len(labels), dtype=np.uint8 if len(labels) <= 256 else np.uint16)
    book = ibis.memtable(pd.DataFrame({"_label": list(labels), "_code": codes}))
    joined = t.left_join(book, value == book._label)
    return joined.select(*t.columns, **{name: joined._code})


def band_index(discount: ibis.Value, bands: Sequence[float]) -> ibis.Value:
    """Index of the band [bands[i], bands[i+1]) holding the discount; the last band is closed.

    NULL outside the bands (e.g. a negative discount: net above list)."""
    # one comparison per band, in order, once the deals outside every band are set aside
    outside = discount.isnull() | (discount < bands[0]) | (discount > bands[-1])
    cases = [(discount < high, i) for i, high in enumerate(bands[1:-1])]
    return ibis.cases((outside, ibis.null("int64")), *cases, else_=len(bands) - 2)


# The (is_closed, is_won) pairs in :func:`outcome_code`'s order (None: NULL): open, lost and
# won first, so that the usual data spans codes 0 to 2.
_OUTCOME_PAIRS = (
    (False, False),
    (True, False),
    (True, True),
    (False, True),
    (None, False),
    (None, True),
    (False, None),
    (True, None),
    (None, None),
)
# priced (has a list price): True, False, NULL (no list price), in that order
_PRICED_FLAGS = (True, False, None)


def outcome_code(
    is_closed: ibis.BooleanValue, is_won: ibis.BooleanValue, priced: ibis.BooleanValue
) -> ibis.Value:
    """Three deal flags packed into one small integer, NULLs included: 9 × the position of
    ``priced`` in True, False, NULL + the position of (is_closed, is_won) in
    ``_OUTCOME_PAIRS``. Lossless: grouping by it and :func:`decode_outcome` give back the three
    flags. Deals that are open, lost or won, all with a list price, are codes 0, 1 and 2: a
    key of 2 bits for the engine."""

    def is_(flag: ibis.BooleanValue, value: bool | None) -> ibis.BooleanValue:
        return flag.isnull() if value is None else flag.fill_null(not value) == value

    pair = ibis.cases(
        *[(is_(is_closed, c) & is_(is_won, w), i) for i, (c, w) in enumerate(_OUTCOME_PAIRS)]
    )
    listed = ibis.cases(*[(is_(priced, v), i) for i, v in enumerate(_PRICED_FLAGS)])
    return (listed * 9 + pair).cast("uint8")


def _flag_table(values: Sequence[bool | None]) -> tuple[np.ndarray, np.ndarray]:
    """(is True, is NULL) for each position of ``values``, to decode by indexing."""
    return np.array([v is True for v in values]), np.array([v is None for v in values])


_DECODE = (
    _flag_table([c for c, _ in _OUTCOME_PAIRS]),
    _flag_table([w for _, w in _OUTCOME_PAIRS]),
    _flag_table(_PRICED_FLAGS),
)


def decode_outcome(codes: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(is_closed, is_won, priced) from :func:`outcome_code` values: each of bool dtype when
    it has no NULL, else object with None, as the engine's boolean columns come."""
    values = codes.to_numpy(dtype=np.int64)
    positions = (values % 9, values % 9, values // 9)
    flags = []
    for (truth, null), at in zip(_DECODE, positions, strict=True):
        flag, unknown = truth[at], null[at]
        if unknown.any():
            flag = flag.astype(object)
            flag[unknown] = None
        flags.append(pd.Series(flag, index=codes.index))
    return flags[0], flags[1], flags[2]
