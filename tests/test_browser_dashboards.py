"""Every dashboard in chromium, served by ``salesops serve`` (the production set-up).

For each dashboard of DASHBOARDS, one page load, then in order:

- the page loads with no error output, no console error and no request leaving 127.0.0.1;
- every chart renders: the number of vega-embed SVGs is the number the dashboard shows;
- the charts share one copy of the vega JavaScript: the page fetches the served bundle once and
  imports no large script of its own per chart (each chart's module is a small loader);
- a click on a mark of the first chart lists the deals behind it: the drill-down header names
  the segment, and its first deal is the first of ``metrics.deal_list`` for that segment;
- choosing a region in the filter bar's multi-select changes the numbers shown (the KPI cards,
  or the tier table) to what the KPI layer computes for that region, formatted as the page
  formats them (``format_value``);
- still no console error and no outside request after all that clicking.

And a link with parameters, opened on a preheated kernel (``--preheat``), shows the view it
names, not the defaults the kernel ran the notebook with.

Every expected number is computed here from ``load(sample)`` and the metrics functions, never
read from the page. Adding a dashboard is one line in DASHBOARDS (its chart count, and which
numbers follow the filter and which mark to click, when it has them).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from _helpers import ROOT
from conftest import (
    ARTIFACTS_DIR,
    PageLog,
    call_failed,
    close,
    recorded_page,
    salesops_serve,
    save_artifacts,
    wait_for_texts,
)

from salesops_widgets import metrics
from salesops_widgets.widgets import (
    KPI_CARDS,
    chart_bundle_route,
    period_for_preset,
    previous_period,
)
from salesops_widgets.widgets._format import format_value

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RENDER_TIMEOUT_MS = 240_000  # a cold kernel runs the whole notebook; 2 shared cores
UPDATE_TIMEOUT_S = 90.0  # a filter change or a click: debounce, engine queries, widget sync
REGION = "EMEA"  # the region chosen in the filter bar
ERROR_TEXTS = ("Traceback", "There was an error when executing cell", "could not be computed")
# Records every Blob the page turns into a URL (anywidget imports each model's ESM from one):
# its size and type, in window.__salesopsBlobs.
BLOB_RECORDER = """
window.__salesopsBlobs = [];
const createObjectURL = URL.createObjectURL.bind(URL);
URL.createObjectURL = (object) => {
  if (object instanceof Blob) window.__salesopsBlobs.push({size: object.size, type: object.type});
  return createObjectURL(object);
};
"""
BIG_SCRIPT = 100_000  # bytes: a chart's loader is about 1 KB, the vega bundle about 900 KB


# --------------------------------------------------------------------------------------------------
# What each dashboard shows, computed from the KPI layer

Filters = dict[str, list[str]]


def segment_row(data, filters: Filters) -> pd.Series:
    """The KPI row of the selection: ``metrics.segment_kpis``."""
    return metrics.segment_kpis(data, filters=filters).iloc[0]


def cycle_row(data, filters: Filters) -> pd.Series:
    """``segment_kpis`` plus the closed-only median of ``metrics.time_to_close``."""
    row = segment_row(data, filters).copy()
    closed_only = metrics.time_to_close(data, filters=filters)["naive_median_days_closed_only"]
    row["naive_median_days_closed_only"] = closed_only.iloc[0]
    return row


def won_discounts_row(data, filters: Filters) -> pd.Series:
    """The won deals' discounts: ``metrics.deal_discounts(status="won")``."""
    return metrics.deal_discounts(data, status="won", filters=filters).iloc[0]


def card_texts(row: pd.Series, spec: dict[str, Any], currency: str) -> tuple[str, str, str]:
    """(label, value, interval) of one card as the cards format them (``format_value``,
    compact money)."""

    def text(column: str) -> str:
        return format_value(row[column], spec["kind"], currency=currency, compact=True)

    bounds = [row.get(spec.get(k), float("nan")) for k in ("low", "high")]
    interval = ""
    if "low" in spec and all(pd.notna(b) for b in bounds):
        interval = f"95% interval {text(spec['low'])} – {text(spec['high'])}"
    return (spec["label"], text(spec["column"]), interval)


def shown_cards(page) -> list[tuple[str, str, str]]:
    """The KPI cards on the page: (label, value, interval); a "too few to say" card shows its
    value as "(point estimate X)"."""
    return [
        tuple(card)
        for card in page.eval_on_selector_all(
            ".salesops-card",
            """cards => cards.map(card => {
                const divs = [...card.children].map(d => d.innerText.trim());
                const value = card.querySelector('.salesops-value');
                const estimate = divs.find(t => t.startsWith('(point estimate '));
                return [
                    divs[0],
                    value ? value.innerText.trim() : (estimate || '').slice(16, -1),
                    divs.find(t => t.startsWith('95% interval')) || '',
                ];
            })""",
        )
    ]


def tier_table(data, filters: Filters) -> list[tuple[str, str, str]]:
    """The tier table of the default tiering (reps on bookings, quartiles): (tier, entities,
    opportunities) per tier, from ``metrics.stratify``."""
    strata = metrics.stratify(data, entity="owner_id", measure="bookings", filters=filters)
    ranked = strata[strata["tier"].notna()]
    rows = ranked.groupby("tier", observed=True, sort=False).agg(
        entities=("entity", "size"), opportunities=("opportunities", "sum")
    )
    return [
        (str(tier), format_value(r.entities, "count"), format_value(r.opportunities, "count"))
        for tier, r in rows.iterrows()
    ]


def shown_tier_table(page) -> list[tuple[str, str, str]]:
    """The rows of the table titled "The tiers": (tier, entities, opportunities)."""
    table = page.locator(
        "xpath=//h4[normalize-space()='The tiers']/ancestor::div"
        "[contains(@class,'widget-vbox')][1]//table[contains(@class,'salesops-table')]"
    ).first
    header = [t.strip() for t in table.locator("thead th").all_inner_texts()]
    wanted = [header.index(c) for c in ("tier", "entities", "opportunities")]
    rows = table.locator("tbody tr")
    return [
        tuple(cells[i].strip() for i in wanted)
        for cells in (rows.nth(k).locator("td").all_inner_texts() for k in range(rows.count()))
    ]


@dataclass(frozen=True)
class Numbers:
    """Numbers on the page that follow the filter bar: how to compute them, how to read them."""

    expected: Callable[[Any, Filters], list]
    shown: Callable[[Any], list]


def cards(row=segment_row, spec: tuple[dict[str, Any], ...] = KPI_CARDS) -> Numbers:
    """KPI cards: those of ``spec`` (label, column, kind, low/high columns), valued from
    ``row(data, filters)``; the page may show more cards, which are not checked."""
    labels = {entry["label"] for entry in spec}

    def expected(data, filters: Filters) -> list[tuple[str, str, str]]:
        values = row(data, filters)
        return [card_texts(values, e, data.base_currency) for e in spec if e["column"] in values]

    def shown(page) -> list[tuple[str, str, str]]:
        return [card for card in shown_cards(page) if card[0] in labels]

    return Numbers(expected, shown)


CYCLE_CARDS = (
    {
        "label": "Median days to close (open deals counted)",
        "column": "km_median_days_to_close",
        "kind": "days",
        "low": "km_median_low",
        "high": "km_median_high",
    },
    {
        "label": "Median of closed deals only (biased low)",
        "column": "naive_median_days_closed_only",
        "kind": "days",
    },
    {"label": "Median days to win", "column": "median_cycle_days_won", "kind": "days"},
    {"label": "Open deals", "column": "open", "kind": "count"},
)
PRICE_CARDS = (
    {
        "label": "Discount given (dollar-weighted)",
        "column": "portfolio_discount",
        "kind": "percent",
    },
)
TIERS = Numbers(tier_table, shown_tier_table)


@dataclass(frozen=True)
class Drill:
    """A click that drills down: on the mark whose aria-label holds ``mark``, in the chart
    titled ``chart`` (None: the first chart). ``segment``: the deals it must list, as
    ``data -> filters`` (or the filters); ``status`` and ``sort`` as the drill-down sets them."""

    mark: str
    segment: Callable[[Any], Filters] | Filters
    chart: str | None = None
    status: str | None = None
    sort: str = "amount"
    period: Callable[[Any], tuple] | None = None  # the deals' period, as ``data -> (start, end)``
    date_field: str = "created_date"


def tier_entities(name: str, entity: str = "owner_id") -> Callable[[Any], Filters]:
    """The entities of tier ``name`` (reps on bookings, quartiles): ``metrics.stratify``."""

    def segment(data) -> Filters:
        strata = metrics.stratify(data, entity=entity, measure="bookings")
        return {entity: strata.loc[strata["tier"].astype(str) == name, "entity"].tolist()}

    return segment


@dataclass(frozen=True)
class Dashboard:
    """One dashboard and what its first view must show.

    charts: vega-embed charts after the first load. numbers: the numbers that follow the
    region filter (None: no filter bar). drill: what a click lists (None: nothing to click).
    shows: texts the first view must show, as ``data -> texts`` (waited for, as the charts are).
    """

    notebook: str
    charts: int
    numbers: Numbers | None = None
    drill: Drill | None = None
    shows: Callable[[Any], list[str]] | None = None
    lists_deals: bool = False  # without a mark to click, it lists deals all the same


def quality_texts(data) -> list[str]:
    """The data-quality report's as-of date and the opportunities read, as its tables print
    them (thousands separated)."""
    read = data.report.tables["opportunities"].rows_read
    return [data.as_of.isoformat(), "opportunities", f"{read:,}"]


def period_b(data) -> tuple:
    """The driver tree's period B: the filter bar's last 12 months."""
    return period_for_preset("last_12_months", data.as_of)


def bridge_row(data, filters: Filters) -> list[str]:
    """Bookings of periods A and B, as the bridge's sentence formats them."""
    b = period_b(data)
    row = metrics.bookings_bridge(
        data, period_a=previous_period(*b), period_b=b, filters=filters
    ).iloc[0]
    return [
        format_value(row[c], "money", currency=data.base_currency)
        for c in ("bookings_a", "bookings_b")
    ]


def shown_bridge(page) -> list[str]:
    """The two bookings of the sentence "Bookings went from X (...) to Y (...)"."""
    text = page.locator("#rendered_cells").inner_text()
    found = re.search(r"Bookings went from (\S+) \([^)]*\) to (\S+) \(", text)
    return list(found.groups()) if found else []


def goal_texts(data) -> list[str]:
    """Each example goal's name, and where its trend comes from."""
    goals = metrics.read_goals(ROOT / "data" / "samples" / "goals.yaml")
    return [g.name for g in goals] + ["no run history yet"]


ENTERPRISE = {"size_band": ["Enterprise"]}
DISCOUNTER = {"owner": ["Avery Larsen"]}  # REP-013, a habitual discounter (data/samples/README.md)
DASHBOARDS = [
    Dashboard("data_quality.ipynb", charts=0, shows=quality_texts),
    # 6 KPI charts, the heatmap (size band x region), the segments against the overall
    Dashboard("segmentation_explorer.ipynb", 8, cards(), Drill(": Enterprise;", ENTERPRISE)),
    # 4 outcomes per tier, the mix-adjusted outcome, the tier migration
    Dashboard(
        "stratification_comparisons.ipynb", 6, TIERS, Drill("Tier: Q1;", tier_entities("Q1"))
    ),
    Dashboard(
        "sales_cycle_acceleration.ipynb",
        9,
        cards(cycle_row, CYCLE_CARDS),
        Drill(": Enterprise; p75_cycle_days", ENTERPRISE, status="won"),
    ),
    Dashboard(
        "sticker_shock.ipynb",
        14,
        cards(won_discounts_row, PRICE_CARDS),
        Drill(
            ": Enterprise;", ENTERPRISE, "Discount per won deal by company size", sort="discount"
        ),
    ),
    # one chart per example goal; no filter bar (each goal has its own segment)
    Dashboard("goal_tracking.ipynb", 4, shows=goal_texts, lists_deals=True),
    # the bookings bridge, the ASP bridge, two drill levels, who pulls the price down
    Dashboard(
        "driver_tree.ipynb",
        5,
        Numbers(bridge_row, shown_bridge),
        Drill(
            ": Avery Larsen;",
            DISCOUNTER,
            "Who pulls the price down",
            period=period_b,
            date_field="closed_date",
        ),
    ),
]


def test_every_notebook_has_an_entry():
    listed = {d.notebook for d in DASHBOARDS}
    notebooks = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks - listed == set(), "add these dashboards to DASHBOARDS"
    assert listed - notebooks == set(), "these DASHBOARDS entries have no notebook"


# --------------------------------------------------------------------------------------------------
# One page per dashboard, shared by its tests


@dataclass
class Opened:
    dashboard: Dashboard
    page: Any
    log: PageLog


@pytest.fixture(scope="module", params=DASHBOARDS, ids=lambda d: d.notebook.removesuffix(".ipynb"))
def opened(request, browser, serve_url, sample):
    """The dashboard, rendered once in a fresh page; its tests run in the order of this file."""
    dashboard: Dashboard = request.param
    texts = dashboard.shows(sample) if dashboard.shows else []
    log = PageLog()
    context, page = recorded_page(browser, log)
    context.add_init_script(BLOB_RECORDER)
    try:
        page.goto(f"{serve_url}voila/render/{dashboard.notebook}", timeout=RENDER_TIMEOUT_MS)
        page.locator("#rendered_cells").wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
        if dashboard.charts:
            page.wait_for_function(
                "n => document.querySelectorAll('.vega-embed svg.marks').length >= n",
                arg=dashboard.charts,
                timeout=RENDER_TIMEOUT_MS,
            )
        if texts:
            wait_for_texts(page, texts, RENDER_TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
    except Exception:
        save_artifacts(page, f"{request.node.nodeid}[{dashboard.notebook}]-load")
        close(context, page)
        raise
    yield Opened(dashboard, page, log)
    close(context, page)


@pytest.fixture
def view(opened, request):
    """The opened dashboard; a failing test leaves a screenshot and the page's HTML."""
    yield opened
    if call_failed(request.node):
        save_artifacts(opened.page, request.node.nodeid)


def wait_until_equal(read: Callable[[], Any], expected: Any, timeout: float = UPDATE_TIMEOUT_S):
    """What ``read()`` returns once it equals ``expected``, or its last value at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def errors_on(page) -> list[str]:
    """Error output on the page: failed cells (with or without tracebacks), stderr output,
    and the widget kit's error boxes."""
    text = page.locator("#rendered_cells").inner_text()
    found = [marker for marker in ERROR_TEXTS if marker in text]
    found += page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    found += page.locator(".salesops-error").all_inner_texts()
    return found


# --------------------------------------------------------------------------------------------------
# The tests, in the order they run on each page


def test_loads_without_errors_or_outside_requests(view, sample):
    page, log = view.page, view.log
    assert errors_on(page) == []
    texts = view.dashboard.shows(sample) if view.dashboard.shows else []
    text = page.locator("#rendered_cells").inner_text()
    assert [t for t in texts if t not in text] == []
    assert "load(data_path" not in page.content(), "source code is shown"
    assert log.uncaught_errors == []
    assert log.console_errors == []
    assert log.external_requests == [], "the dashboard reached outside the machine"


def test_every_chart_renders(view):
    page, expected = view.page, view.dashboard.charts
    charts = page.locator(".vega-embed svg.marks")
    assert charts.count() == expected
    assert page.locator(".vega-embed").count() == expected, "a chart has no SVG"
    for i in range(expected):
        chart = charts.nth(i)
        box = chart.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 50, f"chart {i} is not drawn"
        marks = chart.locator('[aria-roledescription$="mark container"] > *').count()
        assert marks > 0, f"chart {i} has no marks"


def test_the_charts_share_one_bundle(view):
    """One fetch and one compile of the vega bundle per page, whatever its number of charts."""
    page, charts = view.page, view.dashboard.charts
    route = chart_bundle_route()
    fetched = [url for url in view.log.requests if urlsplit(url).path.endswith(route)]
    resources = page.evaluate(
        "route => performance.getEntriesByType('resource')"
        ".filter(e => new URL(e.name).pathname.endsWith(route)).length",
        route,
    )
    scripts = [b for b in page.evaluate("window.__salesopsBlobs") if "javascript" in b["type"]]
    big = [b["size"] for b in scripts if b["size"] > BIG_SCRIPT]
    if not charts:  # no chart, no bundle
        assert fetched == [] and big == []
        return
    assert len(fetched) == 1, f"the bundle was requested {len(fetched)} times"
    assert resources == 1
    assert big == [], f"{len(big)} charts carried their own copy of the bundle"
    assert len(scripts) >= charts, "each chart's module is a (small) blob"


def named_segment(header: str) -> dict[str, set[str]]:
    """The segment a drill-down header names: "Deals behind: region = EMEA, owner_id = a, b
    (top 50 by amount)" -> {"region": {"EMEA"}, "owner_id": {"a", "b"}}."""
    body = re.sub(r"^Deals behind:\s*|\s*\(top \d+ by [^)]*\)\s*$", "", header.strip())
    body = re.sub(r",?\s*(closed|created) \S+ to \S+$", "", body)  # the period, when one is set
    parts = [p.split(" = ", 1) for p in re.split(r", (?=\w+ = )", body) if " = " in p]
    return {dim: set(values.split(", ")) for dim, values in parts}


def test_a_click_on_a_mark_lists_the_deals_behind_it(view, sample):
    page, drill = view.page, view.dashboard.drill
    if drill is None:  # as declared: nothing to click
        listed = page.locator("h4", has_text="Deals behind:").count()
        assert listed >= 1 if view.dashboard.lists_deals else listed == 0
        return
    segment = drill.segment(sample) if callable(drill.segment) else drill.segment
    chart = page.locator(".vega-embed")
    if drill.chart is not None:
        chart = chart.filter(has=page.locator(f'[aria-label^="Title text \'{drill.chart}"]'))
    mark = chart.first.locator(
        f'g[aria-roledescription$="mark container"] > path[aria-label*="{drill.mark}"]'
    )
    assert mark.count() >= 1, f"no mark labelled {drill.mark!r} in chart {drill.chart!r}"
    mark.first.click()

    period = drill.period(sample) if drill.period else None
    deals = metrics.deal_list(
        sample,
        filters=segment,
        status=drill.status,
        extra=tuple(segment),
        sort=drill.sort,
        period=period,
        date_field=drill.date_field,
    )
    assert deals.columns[0] == "opportunity_id"
    named = {dim: set(map(str, values)) for dim, values in segment.items()}
    expected = ({**named, **({"status": {drill.status}} if drill.status else {})}, deals.iloc[0, 0])
    header = page.locator("h4", has_text="Deals behind:").first

    def shown() -> tuple[dict[str, set[str]], str]:
        cell = header.locator(
            "xpath=ancestor::div[contains(@class,'widget-vbox')][1]//table//tbody/tr[1]/td[1]"
        )
        first = cell.inner_text().strip() if cell.count() else ""
        return named_segment(header.inner_text()), first

    assert wait_until_equal(shown, expected) == expected
    assert view.log.console_errors == [] and view.log.uncaught_errors == []


def test_a_region_filter_shows_the_kpis_of_that_region(view, sample):
    numbers, page = view.dashboard.numbers, view.page
    if numbers is None:  # as declared: no filter bar
        assert page.locator("select[multiple]").count() == 0
        return
    everything = numbers.expected(sample, {})
    expected = numbers.expected(sample, {"region": [REGION]})
    assert expected != everything, f"{REGION} alone must change the numbers, or this proves nothing"
    assert numbers.shown(page) == everything, "the first view is not of every deal"

    select = page.locator(
        "xpath=//b[normalize-space()='Region']/ancestor::div"
        "[contains(@class,'widget-vbox')][1]//select[@multiple]"
    )
    option = select.locator("option").filter(has_text=re.compile(rf"^{REGION}\s\("))
    select.select_option(value=option.get_attribute("value"))

    assert wait_until_equal(lambda: numbers.shown(page), expected) == expected


def test_no_console_error_or_outside_request_after_interacting(view):
    assert view.log.uncaught_errors == []
    assert view.log.console_errors == []
    assert view.log.external_requests == []
    assert errors_on(view.page) == []


# --------------------------------------------------------------------------------------------------
# A preheated kernel honours the link's parameters

PREHEATED = "segmentation_explorer.ipynb"
POOL_FILLED = f"Kernel pool of {PREHEATED} is filled"  # Voilà's log line once it has run
USED_PREHEATED = "Using pre-heated kernel"  # Voilà's log line when a page takes it


@pytest.fixture(scope="module")
def preheated_serve(sample_dirs, tmp_path_factory):
    """``salesops serve --preheat 1`` on a folder with one dashboard, once its kernel has run the
    notebook: ``(base URL, server log path)``."""
    folder = tmp_path_factory.mktemp("preheated")
    shutil.copy(ROOT / "notebooks" / PREHEATED, folder / PREHEATED)
    log_name = "serve-preheated.log"
    with salesops_serve(
        sample_dirs["default"], log_name, "--notebooks", str(folder), "--preheat", "1"
    ) as url:
        log = ARTIFACTS_DIR / log_name
        deadline = time.monotonic() + RENDER_TIMEOUT_MS / 1000
        while POOL_FILLED not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert POOL_FILLED in log.read_text(), "the preheated kernel never finished the notebook"
        yield url, log


def test_a_link_on_a_preheated_kernel_opens_the_view_it_names(browser, preheated_serve, sample):
    url, server_log = preheated_serve
    numbers = cards()
    everything = numbers.expected(sample, {})
    expected = numbers.expected(sample, {"region": [REGION]})
    assert expected != everything, f"{REGION} alone must change the numbers, or this proves nothing"
    log = PageLog()
    context, page = recorded_page(browser, log)
    try:
        page.goto(f"{url}voila/render/{PREHEATED}?region={REGION}", timeout=RENDER_TIMEOUT_MS)
        page.locator("#rendered_cells").wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
        assert USED_PREHEATED in server_log.read_text(), "the page did not get the preheated kernel"
        # its charts share the served bundle too: the pool copied the server's environment,
        # with the bundle's URL, before any request
        charts = next(d.charts for d in DASHBOARDS if d.notebook == PREHEATED)
        page.wait_for_function(
            "n => document.querySelectorAll('.vega-embed svg.marks').length >= n",
            arg=charts,
            timeout=RENDER_TIMEOUT_MS,
        )
        route = chart_bundle_route()
        assert len([u for u in log.requests if urlsplit(u).path.endswith(route)]) == 1
        # the cards, and the filter bar's region list, follow the link, not the defaults
        assert wait_until_equal(lambda: numbers.shown(page), expected) == expected
        region = page.locator(
            "xpath=//b[normalize-space()='Region']/ancestor::div"
            "[contains(@class,'widget-vbox')][1]//select[@multiple]"
        )
        chosen = region.evaluate("s => [...s.selectedOptions].map(o => o.textContent)")
        assert [re.split(r"\s\(", c)[0] for c in chosen] == [REGION]  # "EMEA (6,539)"
        assert errors_on(page) == [] and log.console_errors == [] and log.external_requests == []
    except Exception:
        save_artifacts(page, "preheated-link")
        raise
    finally:
        close(context, page)
