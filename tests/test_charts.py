"""Chart builders and the theme (salesops_widgets/charts/).

Specs are checked through ``chart.to_dict()``: marks, encodings, the named selections, formats
and units, the grey of "too few to say". One gallery test renders every builder to SVG with
vl-convert (which validates the spec) and checks that no spec points to a URL. Expected values
(running totals, orders) are derived by hand from the small frames below.
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import pytest

from salesops_widgets import charts
from salesops_widgets.charts import KINDS, empty_chart, to_svg
from salesops_widgets.charts._theme import ACCENT, CATEGORY, FONT, SMALL_N_GREY, THEME_NAME
from salesops_widgets.errors import ParameterError

# --------------------------------------------------------------------------------------------
# Small hand-made frames, shaped like the metrics' outputs.

REGIONS = pd.DataFrame(
    {  # pipeline_kpis(by="region"): APAC has 12 closed deals -> small_n
        "region": ["EMEA", "NA", "APAC"],
        "win_rate": [0.31, 0.40, 0.25],
        "win_rate_low": [0.28, 0.37, 0.09],
        "win_rate_high": [0.34, 0.43, 0.53],
        "closed": [800, 900, 12],
        "bookings": [1_500_000.0, 2_200_000.0, 90_000.0],
        "small_n": [False, False, True],
        "significant": [True, True, False],
    }
)
CELLS = pd.DataFrame(
    {  # segment_kpis(by=("region", "size_band"))
        "region": ["EMEA", "EMEA", "NA", "NA"],
        "size_band": ["SMB", "Enterprise", "SMB", "Enterprise"],
        "win_rate": [0.42, 0.29, 0.45, 0.32],
        "small_n": [False, True, False, False],
    }
)
TIERS = pd.DataFrame(
    {  # compare_strata(...).table, in tier order; "B" before "A" on purpose
        "tier": ["B", "A", "C"],
        "win_rate": [0.47, 0.34, 0.24],
        "win_rate_low": [0.46, 0.33, 0.22],
        "win_rate_high": [0.49, 0.36, 0.26],
        "small_n": [False, False, True],
    }
)
MIGRATION = pd.DataFrame(
    {  # tier_migration: every cell, long form
        "tier_a": ["Q1", "Q1", "Q2", "Q2", "new", "new"],
        "tier_b": ["Q1", "Q2", "Q1", "Q2", "Q1", "Q2"],
        "entities": [3, 1, 1, 2, 0, 0],
        "row_share": [0.75, 0.25, 1 / 3, 2 / 3, None, None],
    }
)
CURVES = pd.DataFrame(
    {  # time_to_close_curves(by="size_band")
        "size_band": ["SMB"] * 3 + ["Enterprise"] * 3,
        "day": [0.0, 10.0, 30.0, 0.0, 20.0, 40.0],
        "at_risk": [10.0, 8.0, 3.0, 6.0, 5.0, 2.0],
        "survival": [1.0, 0.7, 0.4, 1.0, 0.8, 0.5],
        "ci_low": [1.0, 0.5, 0.2, 1.0, 0.5, 0.2],
        "ci_high": [1.0, 0.85, 0.6, 1.0, 0.95, 0.75],
    }
)
INCIDENCE = pd.DataFrame(
    {  # time_to_win_curves()
        "day": [0.0, 10.0, 30.0],
        "share_won": [0.0, 0.2, 0.35],
        "share_lost": [0.0, 0.1, 0.3],
        "share_open": [1.0, 0.7, 0.35],
    }
)
BANDS = pd.DataFrame(
    {  # pocket_price_band()
        "band": ["80-85%", "85-90%", "90-95%"],
        "band_low": [0.80, 0.85, 0.90],
        "band_high": [0.85, 0.90, 0.95],
        "volume": [120.0, 300.0, 80.0],
    }
)
DISCOUNTS = pd.DataFrame(
    {  # deal_discounts(by="owner")
        "owner": ["Ann", "Bo"],
        "discount_p25": [0.04, 0.22],
        "median_deal_discount": [0.09, 0.27],
        "discount_p75": [0.14, 0.32],
    }
)
WATERFALL = pd.DataFrame(
    {  # price_waterfall(): deductions add up to list - pocket (1000 - 150 - 30 - 20 = 800)
        "element": ["list", "on_invoice_discount", "invoice", "rebate", "freight", "pocket"],
        "kind": ["price", "deduction", "price", "deduction", "deduction", "price"],
        "amount": [1000.0, 150.0, 850.0, 30.0, 20.0, 800.0],
        "share_of_list": [1.0, 0.15, 0.85, 0.03, 0.02, 0.80],
    }
)
SIZE_BANDS = ["<10k", "10-50k"]
BINS = pd.DataFrame(
    {
        "size": ["<10k", "<10k", "10-50k", "10-50k"],
        "d_low": [0.0, 0.1, 0.0, 0.1],
        "d_high": [0.1, 0.2, 0.1, 0.2],
        "deals": [40, 10, 25, 30],
    }
)
CORRIDOR = pd.DataFrame({"size": SIZE_BANDS, "p25": [0.05, 0.08], "p75": [0.12, 0.16]})
STAGES = pd.DataFrame(
    {  # stage_durations()
        "stage": ["Prospecting", "Proposal", "Negotiation"],
        "conversion_to_next": [0.73, 0.70, 0.67],
        "median_days_in_stage": [14.0, 26.0, 58.0],
        "is_bottleneck": [False, False, True],
    }
)
QUARTERS = pd.DataFrame({"quarter": ["2025-Q1", "2025-Q2"], "realization": [0.88, 0.86]})


def layers(spec: dict) -> list[dict]:
    """The unit specs of a chart (itself when it is not layered)."""
    return spec.get("layer", [spec])


def mark(unit: dict) -> str:
    return unit["mark"]["type"] if isinstance(unit["mark"], dict) else unit["mark"]


def layer_of(spec: dict, mark_type: str) -> dict:
    return next(u for u in layers(spec) if mark(u) == mark_type)


def param(spec: dict, name: str) -> dict:
    return next(p for p in spec.get("params", []) if p["name"] == name)


def condition(channel: dict) -> dict:
    """The first condition of a channel (Altair writes one condition or a list of them)."""
    found = channel["condition"]
    return found[0] if isinstance(found, list) else found


def rows(spec: dict) -> list[dict]:
    """The inline rows of the chart's main dataset (the top-level data)."""
    return spec["datasets"][spec["data"]["name"]]


# --------------------------------------------------------------------------------------------
# Theme and kinds


def test_theme_is_registered_and_enabled_on_import():
    assert THEME_NAME in alt.theme.names()
    assert alt.theme.active == THEME_NAME
    config = charts.kpi_bars(
        REGIONS, category="region", value="win_rate", kind="percent", title="Win rate"
    ).to_dict()["config"]
    assert config["range"]["category"] == list(CATEGORY)
    assert config["range"]["heatmap"] == {"scheme": "blues"}
    assert config["range"]["diverging"] == {"scheme": "blueorange"}
    assert config["font"] == FONT
    assert config["title"]["fontSize"] >= 14 and config["axis"]["labelFontSize"] >= 11


def test_theme_uses_system_fonts_only():
    assert "sans-serif" in FONT and "system-ui" in FONT
    config_text = json.dumps(alt.theme.get()())
    assert "http" not in config_text and "@import" not in config_text and "url(" not in config_text


def test_kinds_give_formats_and_units():
    assert set(KINDS) == {"money", "percent", "days", "count", "ratio", "number"}
    assert KINDS["money"].axis_format == ",.0f"
    assert KINDS["money"].title("Bookings", "USD") == "Bookings (USD)"
    assert KINDS["percent"].axis_format == ".0%" and KINDS["percent"].tooltip_format == ".1%"
    assert KINDS["days"].title("Median cycle") == "Median cycle (days)"
    assert KINDS["count"].axis_format == ",d"
    assert KINDS["percent"].format(0.3691) == "36.9%"
    with pytest.raises(TypeError):
        KINDS["extra"] = KINDS["number"]  # read-only


def test_unknown_kind_and_missing_column_name_the_parameter():
    with pytest.raises(ParameterError, match="kind='dollars'"):
        charts.kpi_bars(REGIONS, category="region", value="win_rate", kind="dollars", title="t")
    with pytest.raises(ParameterError, match="low='nope'"):
        charts.kpi_bars(
            REGIONS, category="region", value="win_rate", kind="percent", title="t", low="nope"
        )


# --------------------------------------------------------------------------------------------
# Segments


def win_rate_bars(**options) -> dict:
    return charts.kpi_bars(
        REGIONS,
        category="region",
        value="win_rate",
        kind="percent",
        low="win_rate_low",
        high="win_rate_high",
        small_n="small_n",
        title="Win rate by region",
        **options,
    ).to_dict()


def test_kpi_bars_marks_encodings_and_units():
    spec = win_rate_bars(overall=0.36, n="closed")
    assert [mark(u) for u in layers(spec)] == ["bar", "errorbar", "rule"]
    bars = layer_of(spec, "bar")
    assert bars["encoding"]["y"]["field"] == "region"
    assert bars["encoding"]["y"]["type"] == "nominal"
    assert bars["encoding"]["x"]["field"] == "win_rate"
    assert bars["encoding"]["x"]["type"] == "quantitative"
    assert bars["encoding"]["x"]["title"] == "Win rate (%)"
    assert bars["encoding"]["x"]["axis"]["format"] == ".0%"
    errorbar = layer_of(spec, "errorbar")["encoding"]
    assert (errorbar["x"]["field"], errorbar["x2"]["field"]) == ("win_rate_low", "win_rate_high")
    tooltips = {t["field"]: t for t in bars["encoding"]["tooltip"]}
    assert tooltips["win_rate"]["format"] == ".1%"
    assert tooltips["closed"]["format"] == ",d"
    assert "overall 36.0%" in " ".join(spec["title"]["subtitle"])


def test_kpi_bars_greys_small_n_rows_with_a_note():
    spec = win_rate_bars()
    color = layer_of(spec, "bar")["encoding"]["color"]
    assert "small_n" in condition(color)["test"]
    assert condition(color)["value"] == SMALL_N_GREY
    notes = {r["region"]: r["_note"] for r in rows(spec)}
    assert notes == {"EMEA": "", "NA": "", "APAC": "too few to say"}


def test_kpi_bars_has_a_named_point_selection_on_the_category():
    spec = win_rate_bars(selection="region_pick")
    select = param(spec, "region_pick")["select"]
    assert select["type"] == "point" and select["fields"] == ["region"]
    assert "params" not in win_rate_bars(selection=None)
    chart = charts.kpi_bars(REGIONS, category="region", value="win_rate", kind="percent", title="t")
    assert "pick" in alt.JupyterChart(chart).selections.trait_names()


def test_kpi_bars_sorting():
    by_value = layer_of(win_rate_bars(), "bar")["encoding"]["y"]
    assert by_value["sort"] == {"field": "win_rate", "op": "max", "order": "descending"}
    as_given = layer_of(win_rate_bars(sort=None), "bar")["encoding"]["y"]
    assert as_given["scale"]["domain"] == ["EMEA", "NA", "APAC"]
    explicit = layer_of(win_rate_bars(sort=["NA", "EMEA", "APAC"]), "bar")["encoding"]["y"]
    assert explicit["sort"] == ["NA", "EMEA", "APAC"]


def test_kpi_bars_money_title_carries_the_currency():
    spec = charts.kpi_bars(
        REGIONS, category="region", value="bookings", kind="money", currency="USD", title="B"
    ).to_dict()
    x = layer_of(spec, "bar")["encoding"]["x"]
    assert x["title"] == "Bookings (USD)" and x["axis"]["format"] == ",.0f"


def test_heatmap_cells_labels_selection_and_small_n():
    spec = charts.heatmap(
        CELLS,
        x="size_band",
        y="region",
        value="win_rate",
        kind="percent",
        small_n="small_n",
        title="Win rate by region and size",
    ).to_dict()
    rect, text = layer_of(spec, "rect"), layer_of(spec, "text")
    assert rect["encoding"]["x"]["field"] == "size_band"
    assert rect["encoding"]["x"]["scale"]["domain"] == ["SMB", "Enterprise"]  # frame order
    assert rect["encoding"]["color"]["field"] == "win_rate"
    assert condition(rect["encoding"]["color"])["value"] == SMALL_N_GREY
    assert rect["encoding"]["color"]["title"] == "Win rate (%)"
    assert text["encoding"]["text"]["format"] == ".0%"
    assert condition(text["encoding"]["text"])["value"] == "too few"
    assert param(spec, "cell")["select"]["fields"] == ["size_band", "region"]


def test_vs_average_marks_direction_and_significance():
    spec = charts.vs_average(
        REGIONS,
        category="region",
        value="win_rate",
        overall=0.35,
        kind="percent",
        significant="significant",
        low="win_rate_low",
        high="win_rate_high",
        title="Win rate against the overall",
    ).to_dict()
    dots = layer_of(spec, "point")
    assert dots["encoding"]["x"]["field"] == "win_rate"
    assert dots["encoding"]["fill"]["field"] == "_marker"
    assert dots["encoding"]["fill"]["scale"]["range"][-1] == "white"  # hollow: not significant
    markers = {r["region"]: r["_marker"] for r in rows(spec)}
    assert markers == {
        "EMEA": "Below average, significant at 5%",  # 0.31 < 0.35
        "NA": "Above average, significant at 5%",
        "APAC": "Not significant",
    }
    diffs = {r["region"]: round(r["_diff"], 6) for r in rows(spec)}
    assert diffs == {"EMEA": -0.04, "NA": 0.05, "APAC": -0.1}
    reference = next(u for u in layers(spec) if mark(u) == "rule" and "data" in u)
    assert spec["datasets"][reference["data"]["name"]] == [{"reference": 0.35}]
    assert param(spec, "pick")["select"]["fields"] == ["region"]
    assert "significant at 5%" in " ".join(spec["title"]["subtitle"])


def test_strata_comparison_keeps_the_tier_order():
    spec = charts.strata_comparison(
        TIERS,
        tier="tier",
        value="win_rate",
        kind="percent",
        low="win_rate_low",
        high="win_rate_high",
        small_n="small_n",
        title="Win rate by tier",
    ).to_dict()
    dots = layer_of(spec, "point")
    assert dots["encoding"]["x"]["scale"]["domain"] == ["B", "A", "C"]
    assert dots["encoding"]["x"]["sort"] is None
    assert dots["encoding"]["y"]["title"] == "Win rate (%)"
    whisker = layer_of(spec, "rule")["encoding"]
    assert (whisker["y"]["field"], whisker["y2"]["field"]) == ("win_rate_low", "win_rate_high")
    assert condition(dots["encoding"]["color"])["value"] == SMALL_N_GREY
    assert param(spec, "tier")["select"]["fields"] == ["tier"]


def test_transition_heatmap_defaults_match_tier_migration():
    spec = charts.transition_heatmap(MIGRATION, title="Tier migration").to_dict()
    rect, text = layer_of(spec, "rect"), layer_of(spec, "text")
    assert rect["encoding"]["y"]["field"] == "tier_a"
    assert rect["encoding"]["y"]["scale"]["domain"] == ["Q1", "Q2", "new"]
    assert rect["encoding"]["x"]["field"] == "tier_b"
    assert rect["encoding"]["color"]["field"] == "row_share"
    assert rect["encoding"]["color"]["scale"]["domain"] == [0, 1]
    assert text["encoding"]["text"]["field"] == "entities"
    assert param(spec, "migration")["select"]["fields"] == ["tier_a", "tier_b"]


# --------------------------------------------------------------------------------------------
# Cycle


def test_survival_curves_steps_and_bands():
    spec = charts.survival_curves(
        CURVES,
        low="ci_low",
        high="ci_high",
        group="size_band",
        title="Time to close",
        y_title="Share still open",
        selection="band",
    ).to_dict()
    line, band = layer_of(spec, "line"), layer_of(spec, "area")
    assert spec["layer"][0] is band  # drawn under the lines
    assert line["mark"]["interpolate"] == "step-after"
    assert line["encoding"]["x"]["field"] == "day"
    assert line["encoding"]["y"]["field"] == "survival"
    assert line["encoding"]["y"]["axis"]["format"] == ".0%"
    assert line["encoding"]["y"]["title"] == "Share still open (%)"
    assert line["encoding"]["color"]["field"] == "size_band"
    assert (band["encoding"]["y"]["field"], band["encoding"]["y2"]["field"]) == (
        "ci_low",
        "ci_high",
    )
    assert param(spec, "band")["bind"] == "legend"


def test_survival_curves_draw_several_value_columns_as_series():
    spec = charts.survival_curves(
        INCIDENCE, value=("share_won", "share_lost"), title="Won and lost", y_title="Share"
    ).to_dict()
    line = layer_of(spec, "line")
    assert line["encoding"]["color"]["field"] == "_series"
    assert {r["_series"] for r in rows(spec)} == {"Share won", "Share lost"}
    assert len(rows(spec)) == 2 * len(INCIDENCE)
    with pytest.raises(ParameterError, match="single value"):
        charts.survival_curves(
            INCIDENCE, value=("share_won", "share_lost"), low="share_open", high="share_open",
            title="t", y_title="y",
        )  # fmt: skip


def test_funnel_highlights_the_bottleneck():
    spec = charts.funnel(STAGES, highlight="is_bottleneck", title="Stage funnel").to_dict()
    bars, text = layer_of(spec, "bar"), layer_of(spec, "text")
    assert bars["encoding"]["y"]["scale"]["domain"] == ["Prospecting", "Proposal", "Negotiation"]
    assert bars["encoding"]["x"]["field"] == "conversion_to_next"
    assert condition(bars["encoding"]["color"])["value"] == ACCENT
    labels = [r["_label"] for r in rows(spec)]
    assert labels[2] == "67% move on · median 58 days · bottleneck"
    assert text["encoding"]["text"]["field"] == "_label"
    assert param(spec, "stage")["select"]["fields"] == ["stage"]


# --------------------------------------------------------------------------------------------
# Distributions and pricing


def test_histogram_draws_prebinned_bars():
    spec = charts.histogram(
        BANDS, count="volume", kind="percent", label="band", title="Pocket price band"
    ).to_dict()
    enc = spec["encoding"]
    assert mark(spec) == "bar"
    assert (enc["x"]["field"], enc["x2"]["field"], enc["y"]["field"]) == (
        "band_low",
        "band_high",
        "volume",
    )
    assert enc["x"]["axis"]["format"] == ".0%"
    assert len(rows(spec)) == 3  # the bins, never raw rows


def test_distribution_box_from_quantiles():
    spec = charts.distribution_box(
        DISCOUNTS,
        category="owner",
        p25="discount_p25",
        median="median_deal_discount",
        p75="discount_p75",
        kind="percent",
        value_title="Deal discount",
        title="Discount by rep",
    ).to_dict()
    box, tick = layer_of(spec, "bar"), layer_of(spec, "tick")
    assert (box["encoding"]["x"]["field"], box["encoding"]["x2"]["field"]) == (
        "discount_p25",
        "discount_p75",
    )
    assert box["encoding"]["x"]["title"] == "Deal discount (%)"
    assert tick["encoding"]["x"]["field"] == "median_deal_discount"
    assert box["encoding"]["y"]["sort"]["field"] == "median_deal_discount"


def test_waterfall_running_totals():
    spec = charts.waterfall(WATERFALL, currency="USD", title="Price waterfall").to_dict()
    steps = {r["_element"]: (r["_start"], r["_end"], r["_step"]) for r in rows(spec)}
    assert steps == {
        "List price": (0.0, 1000.0, "Price level"),
        "On-invoice discount": (1000.0, 850.0, "Deduction"),
        "Invoice price": (0.0, 850.0, "Price level"),
        "Rebates": (850.0, 820.0, "Deduction"),
        "Freight": (820.0, 800.0, "Deduction"),
        "Pocket price": (0.0, 800.0, "Price level"),
    }
    bars = layer_of(spec, "bar")
    assert bars["encoding"]["y"]["title"] == "Price (USD)"
    assert bars["encoding"]["color"]["scale"]["domain"] == ["Price level", "Deduction"]
    assert [r["_signed"] for r in rows(spec)][:2] == [1.0, -0.15]


def test_waterfall_without_kind_column_takes_first_and_last_as_levels():
    frame = WATERFALL.drop(columns="kind").query("element != 'invoice'")
    spec = charts.waterfall(frame, element_kind=None, share=None, title="t").to_dict()
    assert [r["_step"] for r in rows(spec)] == ["Price level"] + ["Deduction"] * 3 + ["Price level"]


def test_binned_scatter_with_corridor():
    spec = charts.binned_scatter(
        BINS,
        x_bin="size",
        y_bin="d_low",
        y_end="d_high",
        count="deals",
        corridor=CORRIDOR,
        currency="USD",
        x_title="Deal size",
        y_title="Discount",
        title="Discount by deal size",
    ).to_dict()
    rect, line = layer_of(spec, "rect"), layer_of(spec, "line")
    assert rect["encoding"]["x"]["type"] == "nominal"
    assert rect["encoding"]["x"]["scale"]["domain"] == SIZE_BANDS
    assert (rect["encoding"]["y"]["field"], rect["encoding"]["y2"]["field"]) == (
        "d_low",
        "d_high",
    )
    assert rect["encoding"]["y"]["title"] == "Discount (%)"
    assert rect["encoding"]["x"]["title"] == "Deal size (USD)"
    assert rect["encoding"]["color"]["field"] == "deals"
    assert line["encoding"]["y"]["field"] == "_corridor"
    assert len(spec["datasets"][line["data"]["name"]]) == 4  # 2 bands x (p25, p75)
    assert param(spec, "cell")["select"]["fields"] == ["size", "d_low"]
    with pytest.raises(ParameterError, match="y_end"):
        charts.binned_scatter(
            BINS, x_bin="size", y_bin="d_low", count="deals", corridor=CORRIDOR, title="t"
        )


def test_line_over_time_axis_type_follows_the_period():
    labels = charts.line_over_time(
        QUARTERS, period="quarter", value="realization", kind="percent", title="t"
    ).to_dict()
    x = layer_of(labels, "line")["encoding"]["x"]
    assert x["type"] == "ordinal" and x["scale"]["domain"] == ["2025-Q1", "2025-Q2"]
    dates = QUARTERS.assign(quarter=pd.to_datetime(["2025-01-01", "2025-04-01"]))
    spec = charts.line_over_time(
        dates, period="quarter", value="realization", kind="percent", title="t"
    ).to_dict()
    assert layer_of(spec, "line")["encoding"]["x"]["type"] == "temporal"
    assert rows(spec)[0]["quarter"].startswith("2025-01-01")


# --------------------------------------------------------------------------------------------
# Every builder: empty frames, the gallery rendered to SVG, no URLs

BRIDGE_STEPS = pd.DataFrame(
    {"step": ["A", "Volume", "Win rate", "ASP", "B"], "amount": [100.0, 30.0, -10.0, 5.0, 125.0]}
)
GOAL_TREND = pd.DataFrame(
    {
        "date": pd.to_datetime(["2025-03-31", "2025-06-30"]),
        "value": [0.40, 0.60],
        "low": [0.30, 0.50],
        "high": [0.50, 0.70],
        "n": [100, 100],
        "expected": [0.40, 0.49],
        "status": ["at risk", "on track"],
        "source": ["2025Q1", "2025Q2"],
    }
)
GOAL_PATH = pd.DataFrame(
    {
        "date": pd.to_datetime(["2025-03-31", "2025-09-30"]),
        "value": [0.40, 0.58],
        "point": ["baseline", "target"],
    }
)

GALLERY = {
    "bridge": lambda df: charts.bridge(df, currency="USD", title="Bookings bridge"),
    "goal_trend": lambda df: charts.goal_trend(
        df, GOAL_PATH.iloc[: len(df) and None], kind="percent", title="Win rate goal",
    ),
    "kpi_bars": lambda df: charts.kpi_bars(
        df, category="region", value="win_rate", kind="percent", low="win_rate_low",
        high="win_rate_high", small_n="small_n", overall=0.36, title="Win rate by region",
    ),
    "heatmap": lambda df: charts.heatmap(
        df, x="size_band", y="region", value="win_rate", kind="percent", small_n="small_n",
        title="Win rate by region and size",
    ),
    "vs_average": lambda df: charts.vs_average(
        df, category="region", value="win_rate", overall=0.35, kind="percent",
        significant="significant", title="Win rate against the overall",
    ),
    "strata_comparison": lambda df: charts.strata_comparison(
        df, tier="tier", value="win_rate", kind="percent", low="win_rate_low",
        high="win_rate_high", title="Win rate by tier",
    ),
    "transition_heatmap": lambda df: charts.transition_heatmap(df, title="Tier migration"),
    "survival_curves": lambda df: charts.survival_curves(
        df, low="ci_low", high="ci_high", group="size_band", reference=0.5,
        title="Time to close", y_title="Share still open",
    ),
    "histogram": lambda df: charts.histogram(
        df, count="volume", kind="percent", title="Pocket price band"
    ),
    "distribution_box": lambda df: charts.distribution_box(
        df, category="owner", p25="discount_p25", median="median_deal_discount",
        p75="discount_p75", kind="percent", title="Discount by rep",
    ),
    "waterfall": lambda df: charts.waterfall(df, currency="USD", title="Price waterfall"),
    "binned_scatter": lambda df: charts.binned_scatter(
        df, x_bin="size", y_bin="d_low", y_end="d_high", count="deals", corridor=CORRIDOR,
        title="Discount by deal size",
    ),
    "funnel": lambda df: charts.funnel(df, highlight="is_bottleneck", title="Stage funnel"),
    "line_over_time": lambda df: charts.line_over_time(
        df, period="quarter", value="realization", kind="percent", title="Price realization"
    ),
}  # fmt: skip
FRAMES = {
    "bridge": BRIDGE_STEPS,
    "goal_trend": GOAL_TREND,
    "kpi_bars": REGIONS,
    "heatmap": CELLS,
    "vs_average": REGIONS,
    "strata_comparison": TIERS,
    "transition_heatmap": MIGRATION,
    "survival_curves": CURVES,
    "histogram": BANDS,
    "distribution_box": DISCOUNTS,
    "waterfall": WATERFALL,
    "binned_scatter": BINS,
    "funnel": STAGES,
    "line_over_time": QUARTERS,
}


def test_gallery_covers_every_builder():
    constants = {"KINDS", "STATUS_COLORS", "to_png", "to_svg"}
    builders = {name for name in charts.__all__ if name not in constants}
    assert builders - {"empty_chart"} == set(GALLERY)


def strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_empty_frame_gives_the_message_chart(name):
    spec = GALLERY[name](FRAMES[name].iloc[:0]).to_dict()
    assert mark(spec) == "text"
    message = rows(spec)[0]["message"]
    assert message.startswith("No ")
    assert spec["title"]  # the chart keeps its title


def test_empty_chart_says_its_message():
    spec = empty_chart("No deals match these filters", title="Win rate").to_dict()
    assert rows(spec) == [{"message": "No deals match these filters"}]
    assert spec["encoding"]["text"]["field"] == "message"
    assert spec["usermeta"] == {"empty": True, "message": "No deals match these filters"}
    assert "No deals match these filters" in to_svg(empty_chart("No deals match these filters"))


def test_gallery_renders_to_svg_with_inline_data_only():
    for name, build in GALLERY.items():
        chart = build(FRAMES[name])
        spec = chart.to_dict()
        urls = [s for s in strings(spec) if "://" in s or s == "url"]
        assert urls == [spec["$schema"]], name  # the schema id is never fetched
        svg = to_svg(chart)
        assert svg.startswith("<svg"), name
        title = spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"]
        assert title in svg, name


# --------------------------------------------------------------------------------------------
# Goals and drivers


def test_bridge_steps_from_level_to_level():
    steps = BRIDGE_STEPS  # A 100, volume +30, win rate -10, ASP +5, B 125
    spec = charts.bridge(steps, currency="USD", title="Bridge").to_dict()
    # levels from 0; each effect from the running total: 100 -> 130 -> 120 -> 125
    got = {r["step"]: (r["bottom"], r["top"], r["kind"]) for r in rows(spec)}
    assert got == {
        "A": (0.0, 100.0, "level"),
        "Volume": (100.0, 130.0, "up"),
        "Win rate": (130.0, 120.0, "down"),
        "ASP": (120.0, 125.0, "up"),
        "B": (0.0, 125.0, "level"),
    }
    assert spec["encoding"]["y"]["title"] == "Bookings (USD)"
    assert spec["encoding"]["x"]["sort"] == ["A", "Volume", "Win rate", "ASP", "B"]


def test_goal_trend_has_interval_path_and_status_colours():
    trend, path = GOAL_TREND, GOAL_PATH  # at risk, then on track; baseline to target
    spec = charts.goal_trend(trend, path, kind="percent", title="G").to_dict()
    marks = [mark(u) for u in layers(spec)]
    assert marks == ["rule", "line", "line", "point"]
    whiskers, _, dashed, points = layers(spec)
    assert (whiskers["encoding"]["y"]["field"], whiskers["encoding"]["y2"]["field"]) == (
        "low",
        "high",
    )
    assert dashed["mark"]["strokeDash"] == [6, 4]
    assert points["encoding"]["color"]["scale"]["domain"] == list(charts.STATUS_COLORS)


def test_a_zoomed_bridge_starts_its_levels_near_the_lowest_end():
    steps = pd.DataFrame({"step": ["A", "Price", "Mix", "B"], "amount": [100.0, -4.0, 2.0, 98.0]})
    spec = charts.bridge(steps, title="ASP", zoom=True).to_dict()
    # ends: 100, 96 (after price), 98; spread 4: levels from 96 - 2 * 4 = 88
    got = {r["step"]: (r["bottom"], r["top"]) for r in rows(spec)}
    assert got == {
        "A": (88.0, 100.0),
        "Price": (100.0, 96.0),
        "Mix": (96.0, 98.0),
        "B": (88.0, 98.0),
    }
    assert spec["encoding"]["y"]["scale"] == {"zero": False}
