"""The stored codes of the kept deals table (salesops_widgets/metrics/_codes.py): the packed
outcome code decodes back to its three flags, NULLs included (counted by hand in the comment)."""

from __future__ import annotations

import ibis
import pandas as pd

from salesops_widgets.metrics._codes import decode_outcome, outcome_code


def test_decode_outcome_gives_back_the_three_flags_with_nulls():
    # 2: won (closed, won), priced; 19 = 2 x 9 + 1: lost (closed, not won), priced NULL;
    # 5: pair 5 = (NULL, True), priced; 12 = 9 + 3: (False, True), priced False
    closed, won, priced = decode_outcome(pd.Series([2, 19, 5, 12], dtype="uint8"))
    assert closed.tolist() == [True, True, None, False] and closed.dtype == object
    assert won.tolist() == [True, False, True, True] and won.dtype == bool
    assert priced.tolist() == [True, None, True, False]
    # every triple survives a round trip through the engine's code
    flags = (True, False, None)
    triples = [(c, w, p) for c in flags for w in flags for p in flags]
    frame = pd.DataFrame(triples, columns=["c", "w", "p"]).astype("boolean")
    t = ibis.memtable(frame)
    codes = t.select(k=outcome_code(t.c, t.w, t.p)).to_pandas()["k"]
    assert sorted(codes) == list(range(27))
    back = list(zip(*(s.tolist() for s in decode_outcome(codes)), strict=True))
    assert back == [tuple(None if pd.isna(v) else bool(v) for v in row) for row in triples]
