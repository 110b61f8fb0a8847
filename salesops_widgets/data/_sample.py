"""Deterministic synthetic sales data: a clean sample with planted effects, and a messy variant.

The clean sample follows the canonical schema (see ``_schema.py``) and triggers no data-quality
rule. Five effects are planted so that each analysis has something true to find; the messy
variant adds a known number of each data-quality problem. Both are described for users in
``data/samples/README.md``.

Everything is vectorized numpy drawing from one ``Generator(PCG64(seed))`` (the messy variant
draws its rows from a second one seeded with ``[seed, 1]``). Deals are simulated in chunks of
``CHUNK`` and built as Arrow tables: :func:`generate_sample` converts them to pandas, and
:func:`write_sample` streams them to parquet or CSV on a writer thread, so that ten million
opportunities take well under a minute and a gigabyte.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from salesops_widgets.data._schema import EXCLUDE_RULES, FLAG_RULES
from salesops_widgets.errors import ParameterError

__all__ = ["generate_sample", "write_sample", "MESSY_PLANTED", "SAMPLE_TABLES"]

SAMPLE_TABLES = ("opportunities", "stage_history", "line_items", "accounts", "reps", "products")

# --------------------------------------------------------------------------------------------
# The world: fixed catalogues and the parameters of the planted effects
# --------------------------------------------------------------------------------------------

STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")
PROBABILITY = np.array([10, 20, 50, 80, 100, 0], dtype=np.int64)  # Salesforce-style, 0-100
STAGE_DAYS = np.array([14.0, 21.0, 28.0, 21.0])  # median days in each open stage
STAGE_SIGMA = 0.6  # log-normal spread of a stage duration
STALL_SHARE, STALL_RANGE = 0.25, (4.0, 20.0)  # slow deals: one stage takes 4-20x longer
STALL_STAGE = 3  # Negotiation: Enterprise deals spend ENTERPRISE_STALL x longer in it
ENTERPRISE_STALL = 3.0
LOST_AT = np.array([0.35, 0.30, 0.20, 0.15])  # stage at which a lost deal drops out

SIZES = ("SMB", "Mid-Market", "Enterprise")
SIZE_SHARE = np.array([0.50, 0.33, 0.17])  # of accounts
SIZE_DEAL_WEIGHT = np.array([1.0, 1.5, 2.0])  # deals per account, relative
SIZE_EMPLOYEES = ((5, 100), (100, 1000), (1000, 150_000))  # log-uniform, upper exclusive
SIZE_WIN = np.array([0.25, 0.0, -0.30])  # win log-odds
SIZE_VALUE = np.array([12_000.0, 45_000.0, 180_000.0])  # target deal value at list price
SIZE_LINES = np.array([[0.5, 0.3, 0.15, 0.05], [0.3, 0.35, 0.2, 0.15], [0.15, 0.3, 0.3, 0.25]])
SIZE_TERMS = np.array([[0.7, 0.25, 0.05], [0.45, 0.4, 0.15], [0.2, 0.4, 0.4]])  # net 30/60/90
TERMS_COST = np.array([0.006, 0.012, 0.019])  # cost of payment terms, share of invoice price

INDUSTRIES = (
    "Technology",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Public Sector",
)
INDUSTRY_SHARE = np.array([0.22, 0.16, 0.15, 0.17, 0.14, 0.08, 0.08])
INDUSTRY_WIN = np.array([0.45, 0.15, 0.05, -0.05, -0.30, -0.15, -0.50])
INDUSTRY_VALUE = np.array([1.15, 1.35, 1.2, 1.0, 0.8, 0.65, 0.9])
INDUSTRY_REVENUE_PER_EMPLOYEE = np.array([300e3, 400e3, 180e3, 250e3, 200e3, 120e3, 150e3])
INDUSTRY_NOUNS = (
    ("Systems", "Software", "Labs", "Networks", "Digital"),
    ("Capital", "Financial", "Bank", "Insurance", "Partners"),
    ("Health", "Medical", "Clinics", "Pharma", "Care"),
    ("Industries", "Manufacturing", "Components", "Machinery", "Materials"),
    ("Retail", "Stores", "Brands", "Outfitters", "Markets"),
    ("Academy", "College", "Learning", "Institute", "Schools"),
    ("Authority", "Services", "Agency", "Council", "Utilities"),
)

REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_SHARE = np.array([0.45, 0.30, 0.15, 0.10])
COUNTRIES = (
    (("United States", 0.85), ("Canada", 0.15)),
    (
        ("United Kingdom", 0.25),
        ("Germany", 0.25),
        ("France", 0.18),
        ("Netherlands", 0.10),
        ("Spain", 0.08),
        ("Sweden", 0.07),
        ("United Arab Emirates", 0.07),
    ),
    (
        ("Australia", 0.3),
        ("Japan", 0.25),
        ("India", 0.2),
        ("Singapore", 0.15),
        ("New Zealand", 0.1),
    ),
    (("Brazil", 0.4), ("Mexico", 0.3), ("Chile", 0.12), ("Colombia", 0.1), ("Argentina", 0.08)),
)

# (name, family, list price per unit, unit cost as a share of list, weight SMB/MM/Enterprise)
PRODUCTS = (
    ("Platform Core", "Platform", 24_000, 0.15, (0.12, 0.16, 0.08)),
    ("Platform Plus", "Platform", 48_000, 0.14, (0.02, 0.08, 0.12)),
    ("Platform Enterprise", "Platform", 96_000, 0.12, (0.0, 0.02, 0.12)),
    ("Analytics Starter", "Analytics", 6_000, 0.18, (0.16, 0.08, 0.02)),
    ("Analytics Pro", "Analytics", 15_000, 0.16, (0.05, 0.10, 0.10)),
    ("Data Connectors", "Analytics", 3_600, 0.20, (0.08, 0.07, 0.06)),
    ("Edge Gateway", "Devices", 1_800, 0.55, (0.08, 0.07, 0.06)),
    ("Sensor Kit", "Devices", 450, 0.60, (0.08, 0.07, 0.06)),
    ("Rugged Tablet", "Devices", 1_200, 0.58, (0.08, 0.06, 0.04)),
    ("Onboarding Package", "Services", 8_000, 0.55, (0.06, 0.07, 0.06)),
    ("Training Day", "Services", 2_000, 0.50, (0.07, 0.06, 0.05)),
    ("Custom Integration", "Services", 12_000, 0.60, (0.02, 0.05, 0.08)),
    ("Standard Support", "Support", 3_600, 0.25, (0.09, 0.06, 0.03)),
    ("Premium Support", "Support", 9_600, 0.22, (0.01, 0.05, 0.12)),
)
FREIGHT_FAMILY = "Devices"  # the seller pays freight on devices only

DEAL_TYPES = ("New Business", "Expansion", "Renewal")
DEAL_TYPE_SHARE = np.array([0.55, 0.25, 0.20])
DEAL_TYPE_WIN = np.array([0.0, 0.3, 0.7])
LEAD_SOURCES = ("Inbound", "Outbound", "Partner", "Event", "Referral")
LEAD_SOURCE_SHARE = np.array([0.35, 0.30, 0.15, 0.10, 0.10])
LOSS_REASONS = ("Price", "Competitor", "No decision", "Timing", "Features")
LOSS_REASON_SHARE = np.array([0.30, 0.25, 0.20, 0.15, 0.10])

WIN_BASE = -1.3  # win log-odds before segment, rep and discount effects
DISCOUNT_KNEE = 0.18  # win log-odds rise with discount up to here ...
DISCOUNT_SLOPE_BELOW, DISCOUNT_SLOPE_ABOVE = 5.0, -5.0  # ... and fall beyond it
ZERO_DISCOUNT_SHARE = 0.12  # deals of ordinary reps sold at list price
DISCOUNT_BETA = (2.0, 16.0)  # ordinary reps: mean about 11% when discounting
DISCOUNTER_BETA = (11.0, 28.0)  # habitual discounters: mean about 28%
DISCOUNTER_REPS = (3, 8, 13)  # rep numbers: REP-003, REP-008, REP-013

TIERS = ("top", "core", "developing")
TIER_SHARE = (0.25, 0.50)  # top quartile, then half core, the rest developing
TIER_WIN = np.array([0.6, 0.0, -0.4])  # win log-odds
TIER_SPEED = np.array([0.6, 1.0, 1.25])  # multiplies every stage duration
TIER_BOOK = np.array([1.4, 1.0, 0.8])  # relative number of deals a rep is given
REP_DEALS = 350  # about one rep per this many opportunities
TEAM_SIZE = 8

# fmt: off
FIRST_NAMES = (
    "Avery", "Blake", "Casey", "Dana", "Elliot", "Finley", "Gray", "Harper", "Indra", "Jordan",
    "Kai", "Logan", "Morgan", "Noa", "Oakley", "Parker", "Quinn", "Riley", "Sage", "Taylor",
    "Uma", "Val", "Wren", "Ximena", "Yuri", "Zoe", "Amir", "Bea", "Chen", "Dev",
    "Elena", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mateo", "Nadia",
)
LAST_NAMES = (
    "Abbott", "Brennan", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Quintero", "Rossi",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Andersen", "Becker",
    "Costa", "Dimitrov", "Evans", "Fernandes", "Gupta", "Hoffmann", "Iyer", "Johansson", "Kim",
    "Lopez", "Murphy", "Novak",
)
NAME_PREFIXES = (
    "Northwind", "Blue Harbor", "Summit", "Ironwood", "Silverline", "Redwood", "Crescent",
    "Pioneer", "Granite", "Harborview", "Evergreen", "Keystone", "Lakeshore", "Meridian",
    "Oakridge", "Pinnacle", "Riverside", "Sterling", "Westfield", "Brightwater", "Cedar",
    "Copperfield", "Eastgate", "Falcon", "Golden Gate", "Highland", "Juniper", "Kingsley",
    "Lighthouse", "Maple", "Nova", "Orion", "Prairie", "Quantum", "Ridgeway", "Sapphire",
    "Timber", "Union", "Vertex", "Willow",
)
NAME_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "SA", "Group", "Co", "Holdings")
# fmt: on

US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class _Sizes:
    """How many rows of each master table, and the id widths, for n opportunities."""

    n: int
    n_accounts: int
    n_reps: int
    opp_width: int
    account_width: int
    rep_width: int

    @classmethod
    def for_opportunities(cls, n: int) -> _Sizes:
        n_accounts = max(50, n // 8)
        n_reps = max(16, round(n / REP_DEALS))
        return cls(
            n=n,
            n_accounts=n_accounts,
            n_reps=n_reps,
            opp_width=max(7, len(str(n)) + 1),
            account_width=max(5, len(str(n_accounts)) + 1),
            rep_width=max(3, len(str(n_reps)) + 1),
        )


# --------------------------------------------------------------------------------------------
# Small vectorized helpers
# --------------------------------------------------------------------------------------------


_DIGITS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids such as OPP-0000042, built straight into an Arrow buffer."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    size = len(head) + width
    buf = np.empty((len(numbers), size), dtype=np.uint8)
    buf[:, : len(head)] = head
    rest = np.asarray(numbers, dtype=np.int64)
    for end in range(size, len(head), -4):  # four digits at a time, from the right
        step = min(4, end - len(head))
        rest, group = np.divmod(rest, 10_000)
        buf[:, end - step : end] = _DIGITS[group, 4 - step :]
    large = len(numbers) * size >= 2**31
    offsets = np.arange(len(numbers) + 1, dtype=np.int64 if large else np.int32) * size
    kind = pa.LargeStringArray if large else pa.StringArray
    return kind.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(buf))


def _cat(codes: np.ndarray, labels, mask: np.ndarray | None = None) -> pa.DictionaryArray:
    """A dictionary (categorical) Arrow array: cheap to build, small to write."""
    index_type = np.int8 if len(labels) < 128 else np.int32
    indices = pa.array(np.asarray(codes, dtype=index_type), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(labels), pa.string()))


def _pick(rng: np.random.Generator, groups: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """For each row, draw a category with the probabilities of its group (a row of probs)."""
    probs = np.asarray(probs, dtype=float)
    probs = probs / probs.sum(axis=1, keepdims=True)
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    ladder = (cum + np.arange(len(probs))[:, None]).ravel()
    hit = np.searchsorted(ladder, groups + rng.random(len(groups)), side="right")
    return np.minimum(hit - groups * probs.shape[1], probs.shape[1] - 1)


def _draw(rng: np.random.Generator, n: int, probs) -> np.ndarray:
    """n draws of a category with fixed probabilities."""
    return _pick(rng, np.zeros(n, dtype=np.int64), np.asarray(probs)[None, :])


def _money(cents: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(cents, dtype=np.float64) / 100.0)


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype="int64").astype("datetime64[D]"))


def _month_end(days: np.ndarray) -> np.ndarray:
    """Last day of the month of each day number (days since 1970-01-01), by table look-up."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return days
    low = int(days.min())
    grid = np.arange(low, int(days.max()) + 1).astype("datetime64[D]").astype("datetime64[M]")
    ends = (grid + 1).astype("datetime64[D]").astype(np.int64) - 1
    return ends[days - low]


def _names(rng, n: int, first, last) -> tuple[np.ndarray, np.ndarray]:
    """Indices into (first, last) name lists, unique while the combinations last."""
    space = len(first) * len(last)
    combo = rng.choice(space, size=n, replace=n > space)
    return combo // len(last), combo % len(last)


def _join(*parts: pa.Array | str, sep: str = " ") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


# --------------------------------------------------------------------------------------------
# Master tables: products, reps, accounts
# --------------------------------------------------------------------------------------------


def _products() -> tuple[pa.Table, dict]:
    count = len(PRODUCTS)
    list_cents = np.array([p[2] for p in PRODUCTS], dtype=np.int64) * 100
    family = np.array([p[1] for p in PRODUCTS])
    table = pa.table(
        {
            "product_id": _ids("PRD-", np.arange(1, count + 1), 3),
            "product_name": pa.array([p[0] for p in PRODUCTS]),
            "family": pa.array(family),
            "list_price": _money(list_cents),
        }
    )
    hidden = {
        "list_cents": list_cents,
        "cost_share": np.array([p[3] for p in PRODUCTS]),
        "freight": family == FREIGHT_FAMILY,
        "weights": np.array([p[4] for p in PRODUCTS]).T,  # size band x product
    }
    return table, hidden


def _reps(rng, sizes: _Sizes, as_of: int) -> tuple[pa.Table, dict]:
    n = sizes.n_reps
    region = rng.permutation(np.repeat(np.arange(len(REGIONS)), _split(n, REGION_SHARE)))
    tier = _rep_tiers(rng, n)
    team, team_in_region = _teams(region)
    first, last = _names(rng, n + int(team.max()) + 1, FIRST_NAMES, LAST_NAMES)
    names = _join(pa.array(np.array(FIRST_NAMES)[first]), pa.array(np.array(LAST_NAMES)[last]))
    region_names = pa.array(np.array(REGIONS)[region])
    table = pa.table(
        {
            "owner_id": _ids("REP-", np.arange(1, n + 1), sizes.rep_width),
            "owner_name": names.slice(0, n),
            "team": _join(region_names, pa.array((team_in_region + 1).astype(str))),
            "manager": pc.take(names.slice(n), pa.array(team)),
            "region": _cat(region, REGIONS),
            "hire_date": _dates(as_of - rng.integers(90, 3650, size=n)),
            # about 1.1-1.3x the ~3M a rep books in a year, so coverage is meaningful
            "quota": pa.array(np.round(rng.uniform(2.8e6, 4.0e6, size=n), -4)),
        }
    )
    discounter = np.zeros(n, dtype=bool)
    discounter[np.array(DISCOUNTER_REPS) - 1] = True
    return table, {"region": region, "tier": tier, "discounter": discounter}


def _split(n: int, shares: np.ndarray) -> np.ndarray:
    """Split n into len(shares) counts of at least one each, close to the shares."""
    counts = np.maximum(1, np.floor(n * shares).astype(np.int64))
    counts[0] += n - counts.sum()
    return counts


def _rep_tiers(rng, n: int) -> np.ndarray:
    """Hidden skill tier per rep: exactly a quarter top; the habitual discounters are core."""
    tier = np.full(n, 2, dtype=np.int64)
    order = rng.permutation(np.setdiff1d(np.arange(n), np.array(DISCOUNTER_REPS) - 1))
    n_top, n_core = round(n * TIER_SHARE[0]), round(n * TIER_SHARE[1]) - len(DISCOUNTER_REPS)
    tier[order[:n_top]] = 0
    tier[order[n_top : n_top + n_core]] = 1
    tier[np.array(DISCOUNTER_REPS) - 1] = 1
    return tier


def _teams(region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Team per rep, numbered overall and within the region: groups of TEAM_SIZE reps."""
    order = np.argsort(region, kind="stable")
    starts = np.searchsorted(region[order], np.arange(len(REGIONS)))
    rank = np.empty(len(region), dtype=np.int64)
    rank[order] = np.arange(len(region)) - starts[region[order]]
    per_region = np.bincount(region, minlength=len(REGIONS))
    first_team = np.concatenate([[0], np.cumsum(-(-per_region // TEAM_SIZE))[:-1]])
    return first_team[region] + rank // TEAM_SIZE, rank // TEAM_SIZE


def _accounts(rng, sizes: _Sizes) -> tuple[pa.Table, dict]:
    n = sizes.n_accounts
    size = _draw(rng, n, SIZE_SHARE)
    industry = _draw(rng, n, INDUSTRY_SHARE)
    region = _draw(rng, n, REGION_SHARE)
    bounds = np.log(np.array(SIZE_EMPLOYEES, dtype=float))[size]  # n x (low, high)
    low, high = bounds[:, 0], bounds[:, 1]
    employees = np.minimum(np.exp(rng.uniform(low, high)), np.exp(high) - 1).astype(np.int64)
    revenue = employees * INDUSTRY_REVENUE_PER_EMPLOYEE[industry] * rng.lognormal(0, 0.3, n)
    table = pa.table(
        {
            "account_id": _ids("ACC-", np.arange(1, n + 1), sizes.account_width),
            "account_name": _account_names(rng, industry),
            "industry": _cat(industry, INDUSTRIES),
            "employee_count": pa.array(employees),
            "size_band": _cat(size, SIZES),
            "region": _cat(region, REGIONS),
            "country": _countries(rng, region),
            "annual_revenue": pa.array(np.round(revenue, -3)),
        }
    )
    hidden = {
        "size": size,
        "industry": industry,
        "region": region,
        "cum_weight": _cumulative(SIZE_DEAL_WEIGHT[size] * rng.gamma(2.0, 0.5, n)),
    }
    return table, hidden


def _cumulative(weight: np.ndarray) -> np.ndarray:
    """Cumulative probabilities, for drawing with searchsorted(cum, uniform)."""
    cum = np.cumsum(weight / weight.sum())
    cum[-1] = 1.0
    return cum


def _account_names(rng, industry: np.ndarray) -> pa.Array:
    n = len(industry)
    nouns = np.array(INDUSTRY_NOUNS)
    prefix = pa.array(np.array(NAME_PREFIXES)[rng.integers(0, len(NAME_PREFIXES), n)])
    noun = pa.array(nouns[industry, rng.integers(0, nouns.shape[1], n)])
    suffix = pa.array(np.array(NAME_SUFFIXES)[rng.integers(0, len(NAME_SUFFIXES), n)])
    return _join(prefix, noun, suffix)


def _countries(rng, region: np.ndarray) -> pa.Array:
    width = max(len(c) for c in COUNTRIES)
    probs = np.zeros((len(REGIONS), width))
    labels = []
    for r, options in enumerate(COUNTRIES):
        probs[r, : len(options)] = [share for _, share in options]
        labels.append([name for name, _ in options])
    index = _pick(rng, region, probs)
    codes = np.array([sum(len(c) for c in COUNTRIES[:r]) for r in range(len(REGIONS))])[region]
    return _cat(codes + index, [name for names in labels for name in names])


def _owners(rng, region: np.ndarray, reps: dict) -> np.ndarray:
    """Deal owner: a rep of the deal's region; top-tier reps carry a larger book."""
    weights = np.zeros((len(REGIONS), len(reps["region"])))
    weights[reps["region"], np.arange(len(reps["region"]))] = TIER_BOOK[reps["tier"]]
    return _pick(rng, region, weights)


# --------------------------------------------------------------------------------------------
# Deals: the hidden simulation behind opportunities, line items and stage history
# --------------------------------------------------------------------------------------------


def _calendar(rng, n: int, as_of: int) -> np.ndarray:
    """Cumulative number of deals created up to each day of the three years ending at as_of.

    Weekdays only, growing 30% a year; at least one deal is created on as_of itself, so that
    the latest date of the sample is exactly as_of. Deal i (in id order) is created on day
    ``as_of - span + 1 + searchsorted(cum, i, "right")``.
    """
    span = 3 * 365
    days = np.arange(as_of - span + 1, as_of + 1)
    weight = np.exp(np.log(1.3) / 365 * np.arange(span)) * ((days + 3) % 7 < 5)
    counts = rng.multinomial(n, weight / weight.sum())
    if counts[-1] == 0:
        counts[np.argmax(counts)] -= 1
        counts[-1] = 1
    return np.cumsum(counts)


def _discounts(rng, discounter: np.ndarray) -> np.ndarray:
    """Deal discount off list: ordinary reps ~10%, habitual discounters ~28%."""
    n = len(discounter)
    ordinary = np.where(rng.random(n) < ZERO_DISCOUNT_SHARE, 0.0, rng.beta(*DISCOUNT_BETA, n))
    deep = rng.beta(*DISCOUNTER_BETA, n)
    return np.minimum(np.where(discounter, deep, ordinary), 0.6)


def _discount_effect(discount: np.ndarray) -> np.ndarray:
    """Win log-odds from the discount: up to the knee it helps, beyond it it hurts."""
    below = np.minimum(discount, DISCOUNT_KNEE)
    above = np.maximum(discount - DISCOUNT_KNEE, 0.0)
    return DISCOUNT_SLOPE_BELOW * below + DISCOUNT_SLOPE_ABOVE * above


def _timeline(rng, created_us, last, size, tier) -> tuple[np.ndarray, np.ndarray]:
    """Entry time of each open stage (n x 4, microseconds) and the close time of each deal."""
    n = len(created_us)
    days = STAGE_DAYS * np.exp(STAGE_SIGMA * rng.standard_normal((n, 4)))
    days *= TIER_SPEED[tier][:, None]
    days[:, STALL_STAGE] *= np.where(size == 2, ENTERPRISE_STALL, 1.0)
    stalled = np.flatnonzero(rng.random(n) < STALL_SHARE)
    stall_stage = (rng.random(len(stalled)) * (last[stalled] + 1)).astype(np.int64)
    days[stalled, stall_stage] *= rng.uniform(*STALL_RANGE, len(stalled))
    days[np.arange(4)[None, :] > last[:, None]] = 0.0
    elapsed = np.cumsum(np.rint(days * 86_400).astype(np.int64) * 1_000_000, axis=1)
    entry = np.empty((n, 4), dtype=np.int64)
    entry[:, 0] = created_us
    entry[:, 1:] = created_us[:, None] + elapsed[:, :3]
    return entry, created_us + elapsed[:, 3]


@dataclass
class _Deals:
    """Per-deal arrays of one chunk of the simulation (hidden truth included)."""

    first: int  # number of the chunk's first deal (ids are first + 1, ...)
    created: np.ndarray  # day numbers
    account: np.ndarray
    owner: np.ndarray
    size: np.ndarray
    industry: np.ndarray
    deal_type: np.ndarray
    lead_source: np.ndarray
    discount: np.ndarray
    won: np.ndarray  # eventual outcome, also for deals still open
    last: np.ndarray  # last open stage the deal reaches
    entry: np.ndarray  # n x 4 stage entry times (microseconds)
    close_us: np.ndarray
    is_open: np.ndarray
    stage: np.ndarray  # current stage code
    close_date: np.ndarray  # actual, or expected for open deals (day numbers)


def _deals(rng, first: int, stop: int, world: dict) -> _Deals:
    """Simulate deals first..stop-1: who, what, at which discount, and how it went."""
    n, as_of, accounts, reps = stop - first, world["as_of"], world["accounts"], world["reps"]
    created = (
        as_of - 3 * 365 + 1 + np.searchsorted(world["calendar"], np.arange(first, stop), "right")
    )
    account = np.minimum(
        np.searchsorted(accounts["cum_weight"], rng.random(n)), len(accounts["size"]) - 1
    )
    size, industry = accounts["size"][account], accounts["industry"][account]
    owner = _owners(rng, accounts["region"][account], reps)
    deal_type = _draw(rng, n, DEAL_TYPE_SHARE)
    lead_source = _draw(rng, n, LEAD_SOURCE_SHARE)
    discount = _discounts(rng, reps["discounter"][owner])
    tier = reps["tier"][owner]
    logit = WIN_BASE + INDUSTRY_WIN[industry] + SIZE_WIN[size] + DEAL_TYPE_WIN[deal_type]
    logit = logit + TIER_WIN[tier] + _discount_effect(discount)
    won = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    last = np.where(won, 3, _draw(rng, n, LOST_AT))
    created_us = created * US_PER_DAY + rng.integers(8 * 3600, 18 * 3600, n) * 1_000_000
    entry, close_us = _timeline(rng, created_us, last, size, tier)
    end = (as_of + 1) * US_PER_DAY
    is_open = close_us >= end
    current = (entry[:, 1:] < end).sum(axis=1)
    stage = np.where(is_open, current, np.where(won, 4, 5))
    expected = _expected_close(entry[np.arange(n), np.minimum(current, 3)], current)
    pushed = _month_end(as_of + rng.integers(7, 91, n))
    expected = np.where(expected > as_of, expected, pushed)
    close_date = np.where(is_open, expected, close_us // US_PER_DAY)
    return _Deals(
        first, created, account, owner, size, industry, deal_type, lead_source, discount, won,
        last, entry, close_us, is_open, stage, close_date,
    )  # fmt: skip


def _expected_close(entered_us: np.ndarray, stage: np.ndarray) -> np.ndarray:
    """The close date a rep expects on entering a stage: month end after the typical remainder."""
    remaining = np.cumsum(STAGE_DAYS[::-1])[::-1].astype(np.int64)
    return _month_end(entered_us // US_PER_DAY + remaining[np.minimum(stage, 3)])


# --------------------------------------------------------------------------------------------
# Tables built from the deals, one chunk at a time
# --------------------------------------------------------------------------------------------


def _line_items(rng, deals: _Deals, products: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """Line item columns, plus per-deal list and net totals in cents and the main product."""
    n = len(deals.created)
    count = 1 + _pick(rng, deals.size, SIZE_LINES)
    deal = np.repeat(np.arange(n), count)
    m = len(deal)
    product = _pick(rng, deals.size[deal], products["weights"])
    value = SIZE_VALUE[deals.size] * INDUSTRY_VALUE[deals.industry] * rng.lognormal(0, 0.6, n)
    target = (value / count)[deal] * rng.lognormal(0, 0.3, m)
    list_cents = products["list_cents"][product]
    quantity = np.maximum(1, np.rint(target * 100 / list_cents)).astype(np.int64)
    jitter = np.clip(deals.discount[deal] + rng.normal(0, 0.01, m), 0.0, 0.6)
    line_discount = np.where(deals.discount[deal] > 0, jitter, 0.0)
    invoice = np.rint(list_cents * (1 - line_discount)).astype(np.int64)
    partner = deals.lead_source[deal] == LEAD_SOURCES.index("Partner")
    rebate_share = np.where(rng.random(m) < 0.1, rng.uniform(0.01, 0.03, m), 0.0)
    rebate_share = np.where(partner, rng.uniform(0.03, 0.08, m), rebate_share)
    freight = np.where(products["freight"][product], rng.uniform(0.02, 0.05, m), 0.0)
    terms = _pick(rng, deals.size, SIZE_TERMS)
    columns = {
        "deal": deal,
        "product": product,
        "quantity": quantity,
        "list_price": list_cents,
        "invoice_price": invoice,
        "rebate": np.rint(invoice * rebate_share).astype(np.int64),
        "freight": np.rint(list_cents * freight).astype(np.int64),
        "payment_terms_cost": np.rint(invoice * TERMS_COST[terms][deal]).astype(np.int64),
        "unit_cost": np.rint(list_cents * products["cost_share"][product]).astype(np.int64),
    }
    net = np.bincount(deal, weights=quantity * invoice, minlength=n).astype(np.int64)
    gross = np.bincount(deal, weights=quantity * list_cents, minlength=n).astype(np.int64)
    main_product = product[np.cumsum(count) - count]
    return columns, np.stack([gross, net]), main_product


def _line_items_table(columns: dict, opp_ids: pa.Array) -> pa.Table:
    money = ["list_price", "invoice_price", "rebate", "freight", "payment_terms_cost", "unit_cost"]
    return pa.table(
        {
            "opportunity_id": _child_ids(columns["deal"], opp_ids),
            "product_id": _ids("PRD-", columns["product"] + 1, 3),
            "quantity": pa.array(columns["quantity"]),
            **{name: _money(columns[name]) for name in money},
        }
    )


def _child_ids(deal: np.ndarray, opp_ids: pa.Array) -> pa.DictionaryArray:
    """The parent opportunity_id of each child row, dictionary-encoded on the chunk's ids."""
    return pa.DictionaryArray.from_arrays(pa.array(deal.astype(np.int32)), opp_ids)


def _stage_history(deals: _Deals, totals: np.ndarray, opp_ids: pa.Array) -> pa.Table:
    """One row per stage entered, in order, closing row last; nothing after as_of."""
    n = len(deals.created)
    rows = np.where(deals.is_open, deals.stage + 1, deals.last + 2)
    deal = np.repeat(np.arange(n), rows)
    pos = np.arange(len(deal)) - np.repeat(np.cumsum(rows) - rows, rows)
    closing = (pos == rows[deal] - 1) & ~deals.is_open[deal]
    stage = np.where(closing, deals.stage[deal], pos)
    open_stage = np.minimum(pos, 3)
    entered = np.where(closing, deals.close_us[deal], deals.entry.ravel()[deal * 4 + open_stage])
    expected = np.where(closing, entered // US_PER_DAY, _expected_close(entered, open_stage))
    amount = np.where(stage < 2, totals[0][deal], totals[1][deal])
    return pa.table(
        {
            "opportunity_id": _child_ids(deal, opp_ids),
            "stage": _cat(stage, STAGES),
            "entered_at": pa.array(entered.astype("datetime64[us]")),
            "close_date": _dates(expected),
            "amount": _money(amount),
        }
    )


def _opportunities(rng, deals: _Deals, totals, main_product, world: dict) -> pa.Table:
    n, sizes = len(deals.created), world["sizes"]
    lost = ~deals.is_open & ~deals.won
    account_names = pc.take(world["account_names"], pa.array(deals.account))
    product_names = pc.take(world["product_names"], pa.array(main_product))
    return pa.table(
        {
            "opportunity_id": _ids(
                "OPP-", np.arange(deals.first + 1, deals.first + n + 1), sizes.opp_width
            ),
            "opportunity_name": _join(account_names, product_names, sep=" - "),
            "account_id": _ids("ACC-", deals.account + 1, sizes.account_width),
            "owner_id": _ids("REP-", deals.owner + 1, sizes.rep_width),
            "product_id": _ids("PRD-", main_product + 1, 3),
            "stage": _cat(deals.stage, STAGES),
            "is_closed": pa.array(~deals.is_open),
            "is_won": pa.array(deals.won & ~deals.is_open),
            "created_date": _dates(deals.created),
            "close_date": _dates(deals.close_date),
            "amount": _money(totals[1]),
            "list_amount": _money(totals[0]),
            "currency": _cat(np.zeros(n, dtype=np.int8), ["USD"]),
            "deal_type": _cat(deals.deal_type, DEAL_TYPES),
            "lead_source": _cat(deals.lead_source, LEAD_SOURCES),
            "loss_reason": _cat(_draw(rng, n, LOSS_REASON_SHARE), LOSS_REASONS, mask=~lost),
            "probability": pa.array(PROBABILITY[deals.stage]),
        }
    )


CHUNK = 1 << 18  # deals simulated at a time: keeps the working set small at any size
# Parquet dictionary pages large enough for a chunk's opportunity ids (child tables then
# store each id once per row group).
DICTIONARY_PAGE = 8 << 20
NO_DICTIONARY = {  # (nearly) unique values: dictionary encoding only costs time
    "opportunities": ("opportunity_id", "opportunity_name", "account_id", "amount", "list_amount"),
    "stage_history": ("entered_at", "amount"),
    "line_items": ("invoice_price", "rebate", "payment_terms_cost"),
}


def _simulate(n: int, seed: int, as_of: int, sink) -> dict:
    """Generate every table, handing each piece to ``sink(table_name, arrow_table)``.

    The master tables come first, then opportunities, stage_history and line_items in
    chunks of CHUNK deals (in id order). Returns the hidden truth (rep tiers, sizes).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = _Sizes.for_opportunities(n)
    products_table, products = _products()
    reps_table, reps = _reps(rng, sizes, as_of)
    accounts_table, accounts = _accounts(rng, sizes)
    for name, table in (
        ("products", products_table),
        ("reps", reps_table),
        ("accounts", accounts_table),
    ):
        sink(name, table)
    world = {
        "as_of": as_of,
        "sizes": sizes,
        "reps": reps,
        "accounts": accounts,
        "calendar": _calendar(rng, n, as_of),
        "account_names": accounts_table["account_name"],
        "product_names": products_table["product_name"],
    }
    for first in range(0, n, CHUNK):
        deals = _deals(rng, first, min(n, first + CHUNK), world)
        lines, totals, main_product = _line_items(rng, deals, products)
        opportunities = _opportunities(rng, deals, totals, main_product, world)
        opp_ids = opportunities["opportunity_id"].chunk(0)
        sink("opportunities", opportunities)
        sink("stage_history", _stage_history(deals, totals, opp_ids))
        sink("line_items", _line_items_table(lines, opp_ids))
    return {"sizes": sizes, "rep_tier": np.array(TIERS)[reps["tier"]]}


def _tables(n: int, seed: int, as_of: int) -> tuple[dict[str, pa.Table], dict]:
    """All six tables as whole Arrow tables, and the hidden truth."""
    pieces: dict[str, list[pa.Table]] = {name: [] for name in SAMPLE_TABLES}
    truth = _simulate(n, seed, as_of, lambda name, table: pieces[name].append(table))
    return {name: pa.concat_tables(parts) for name, parts in pieces.items()}, truth


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with plain string columns (no categoricals) and datetime64 dates."""
    columns = [c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names).to_pandas(date_as_object=False)


# --------------------------------------------------------------------------------------------
# The messy variant: a known number of each data-quality problem, on distinct rows
# --------------------------------------------------------------------------------------------


def _counts(planted: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Every rule of _schema with its count for one table; unlisted rules are 0."""
    excluded = {rule: planted.get("excluded", {}).get(rule, 0) for rule in EXCLUDE_RULES}
    flagged = {rule: planted.get("flagged", {}).get(rule, 0) for rule in FLAG_RULES}
    return {"excluded": excluded, "flagged": flagged}


# parent_excluded of stage_history and line_items, and currency_without_rate of line_items,
# depend on the data: they are computed by the generator and written to planted.json, so they
# are left out here.
MESSY_PLANTED: dict[str, dict[str, dict[str, int]]] = {
    "opportunities": _counts(
        {
            # a deal without an amount or a created date (15 of each) is kept, not excluded
            "excluded": {"unknown_stage": 12, "duplicate_id": 20},
            "flagged": {
                "unparseable_number": 20,  # in amount: kept without one
                "unparseable_date": 25,  # in created_date: kept without one
                "currency_without_rate": 40,  # kept without an amount
                "negative_amount": 10,  # kept without an amount
                "close_before_created": 15,  # kept, left out of cycle times
                "net_above_list": 18,
                "unmatched_account": 8,
                "unmatched_owner": 5,
                "unmatched_product": 6,
                "open_close_date_past": 14,
            },
        }
    ),
    "stage_history": _counts({"excluded": {"unmatched_opportunity": 9}}),
    "line_items": _counts(
        {"excluded": {"unmatched_opportunity": 7}, "flagged": {"net_above_list": 11}}
    ),
    "accounts": _counts(
        {
            "excluded": {"missing_required": 3, "duplicate_id": 4},
            "flagged": {"formula_text": 5},
        }
    ),
    "reps": _counts({}),
    "products": _counts({}),
}
for _table in ("stage_history", "line_items"):
    del MESSY_PLANTED[_table]["excluded"]["parent_excluded"]
del MESSY_PLANTED["line_items"]["excluded"]["currency_without_rate"]

BAD_NUMBERS = ("TBD", "12k?", "approx. 40k", "see notes", "pending")
BAD_DATES = ("31/31/2024", "not a date", "2024-13-45", "2025-02-30", "sometime in Q3")
UNKNOWN_STAGES = ("Stalled??", "On Hold - see notes", "Parked", "Waiting on legal")
FORMULAS = ('=HYPERLINK("http://x","y")', "+cmd", "@SUM(A1)", "=1+1", "-2+3")
UNMATCHED = {"unmatched_account": 3, "unmatched_owner": 2, "unmatched_product": 2}
ORPHAN_IDS = 3
THOUSANDS = 50  # amounts written like 1,234.50: not a problem, they must parse


class _Picker:
    """Draws rows for one planted problem each, never the same row twice."""

    def __init__(self, rng: np.random.Generator, protected: np.ndarray):
        self.rng = rng
        self.used = np.asarray(protected, dtype=bool).copy()

    def take(self, k: int, where: np.ndarray | None = None) -> np.ndarray:
        free = ~self.used if where is None else (np.asarray(where) & ~self.used)
        pool = np.flatnonzero(free)
        if len(pool) < k:
            raise ParameterError(
                "n_opportunities is too small for the messy sample: use at least 2000"
            )
        rows = np.sort(self.rng.choice(pool, size=k, replace=False))
        self.used[rows] = True
        return rows


def _unknown_ids(prefix: str, width: int, count: int) -> np.ndarray:
    """Ids in the sample's format that no row has: the largest numbers of the width."""
    return np.array([f"{prefix}{10**width - 1 - k:0{width}d}" for k in range(count)], dtype=object)


def _spread(ids: np.ndarray, rows: int) -> np.ndarray:
    """rows values cycling over ids (e.g. 8 rows over 3 ids: 3, 3, 2)."""
    return ids[np.sort(np.arange(rows) % len(ids))]


def _money_text(values) -> np.ndarray:
    cents = np.rint(np.asarray(values, dtype=np.float64) * 100).astype(np.int64)
    whole = (np.abs(cents) // 100).astype(str).astype(object)
    frac = np.char.zfill((np.abs(cents) % 100).astype(str), 2).astype(object)
    return np.where(cents < 0, "-", "").astype(object) + whole + "." + frac


def _date_text(values) -> np.ndarray:
    days = pd.Series(values).to_numpy(dtype="datetime64[D]")
    return np.datetime_as_string(days).astype(object)


def _timestamp_text(values) -> np.ndarray:
    seconds = pd.Series(values).to_numpy(dtype="datetime64[s]")
    return np.char.replace(np.datetime_as_string(seconds), "T", " ").astype(object)


def _bool_text(values) -> np.ndarray:
    return np.where(np.asarray(values, dtype=bool), "true", "false").astype(object)


def _plan(rng, opp: pd.DataFrame, as_of: pd.Timestamp) -> tuple[dict, _Picker]:
    """Which opportunity rows get which problem (rules in EXCLUDE_RULES order, then flags)."""
    created, closed = opp["created_date"], opp["is_closed"].to_numpy()
    picker = _Picker(rng, (created >= as_of).to_numpy())  # keep the as-of row clean
    stale = ~closed & (created <= as_of - pd.Timedelta(days=2)).to_numpy()
    plan = {
        "blank_amount": picker.take(15),
        "blank_created": picker.take(15),
        "unparseable_number": picker.take(20),
        "unparseable_date": picker.take(25),
        "unknown_stage": picker.take(12),
        "currency_without_rate": picker.take(40),
        "negative_amount": picker.take(10, closed),
        "close_before_created": picker.take(15, closed),
        "duplicate_id": picker.take(20),
        "net_above_list": picker.take(18, opp["amount"].to_numpy() >= 100),
        "unmatched_account": picker.take(8),
        "unmatched_owner": picker.take(5),
        "unmatched_product": picker.take(6),
        "open_close_date_past": picker.take(14, stale),
        "thousands": picker.take(THOUSANDS, opp["amount"].to_numpy() >= 1000),
    }
    return plan, picker


def _messy_opportunities(rng, opp: pd.DataFrame, plan: dict, as_of, sizes: _Sizes):
    out = opp.copy()
    amount = _money_text(opp["amount"])
    amount[plan["thousands"]] = [f"{v:,.2f}" for v in opp["amount"].to_numpy()[plan["thousands"]]]
    amount[plan["blank_amount"]] = None
    amount[plan["unparseable_number"]] = _spread(np.array(BAD_NUMBERS, dtype=object), 20)
    amount[plan["negative_amount"]] = _money_text(
        -opp["amount"].to_numpy()[plan["negative_amount"]]
    )
    created = _date_text(opp["created_date"])
    created[plan["blank_created"]] = None
    created[plan["unparseable_date"]] = _spread(np.array(BAD_DATES, dtype=object), 25)
    close = opp["close_date"].to_numpy(dtype="datetime64[D]").copy()
    made = opp["created_date"].to_numpy(dtype="datetime64[D]")
    rows = plan["close_before_created"]
    close[rows] = made[rows] - rng.integers(1, 61, len(rows)).astype("timedelta64[D]")
    rows = plan["open_close_date_past"]
    last = np.datetime64(as_of.date()) - np.timedelta64(1, "D")
    low = np.maximum(made[rows], last - np.timedelta64(45, "D"))
    close[rows] = low + (rng.random(len(rows)) * (last - low + 1).astype(int)).astype(int)
    stage = opp["stage"].to_numpy(dtype=object).copy()
    stage[plan["unknown_stage"]] = _spread(np.array(UNKNOWN_STAGES, dtype=object), 12)
    is_closed, is_won = _bool_text(opp["is_closed"]), _bool_text(opp["is_won"])
    is_closed[plan["unknown_stage"]] = is_won[plan["unknown_stage"]] = None
    currency = opp["currency"].to_numpy(dtype=object).copy()
    currency[plan["currency_without_rate"]] = "EUR"
    list_amount = opp["list_amount"].to_numpy().copy()
    rows = plan["net_above_list"]
    shrink = rng.uniform(0.8, 0.95, len(rows))
    list_amount[rows] = np.floor(opp["amount"].to_numpy()[rows] * shrink * 100) / 100
    out["amount"], out["created_date"], out["close_date"] = amount, created, _date_text(close)
    out["stage"], out["is_closed"], out["is_won"] = stage, is_closed, is_won
    out["currency"], out["list_amount"] = currency, list_amount
    _unmatch(out, plan, sizes)
    copies = out.iloc[plan["duplicate_id"]]
    return pd.concat([out, copies], ignore_index=True)


def _unmatch(out: pd.DataFrame, plan: dict, sizes: _Sizes) -> None:
    targets = {
        "unmatched_account": ("account_id", "ACC-", sizes.account_width),
        "unmatched_owner": ("owner_id", "REP-", sizes.rep_width),
        "unmatched_product": ("product_id", "PRD-", 3),
    }
    for rule, (column, prefix, width) in targets.items():
        ids = _unknown_ids(prefix, width, UNMATCHED[rule])
        values = out[column].to_numpy(dtype=object).copy()
        values[plan[rule]] = _spread(ids, len(plan[rule]))
        out[column] = values


def _with_orphans(rng, child: pd.DataFrame, count: int, sizes: _Sizes) -> pd.DataFrame:
    """Append count copies of random rows whose opportunity_id exists nowhere."""
    orphans = child.iloc[np.sort(rng.choice(len(child), size=count, replace=False))].copy()
    ids = _unknown_ids("OPP-", sizes.opp_width, ORPHAN_IDS)
    orphans["opportunity_id"] = _spread(ids, count)
    return pd.concat([child, orphans], ignore_index=True)


def _messy_line_items(rng, lines: pd.DataFrame, picker: _Picker, opp: pd.DataFrame, sizes):
    """Invoice above list on one line of 11 otherwise clean deals, then 7 orphan lines."""
    deals = opp["opportunity_id"].to_numpy()[picker.take(11)]
    first = lines.drop_duplicates("opportunity_id")
    rows = first.index[first["opportunity_id"].isin(deals)].to_numpy()
    out = lines.copy()
    raise_by = rng.uniform(1.02, 1.10, len(rows))
    out.loc[rows, "invoice_price"] = np.round(lines.loc[rows, "list_price"] * raise_by, 2)
    return _with_orphans(rng, out, 7, sizes)


def _messy_accounts(rng, accounts: pd.DataFrame) -> pd.DataFrame:
    rows = rng.choice(len(accounts), size=len(FORMULAS) + 4 + 3, replace=False)
    formula, duplicate, blank = rows[:5], rows[5:9], rows[9:]
    out = accounts.copy()
    names = out["account_name"].to_numpy(dtype=object).copy()
    names[formula] = FORMULAS
    out["account_name"] = names
    unnamed = out.iloc[blank].copy()
    unnamed["account_id"] = None
    unnamed["account_name"] = [f"Unassigned lead {k + 1}" for k in range(len(blank))]
    return pd.concat([out, out.iloc[np.sort(duplicate)], unnamed], ignore_index=True)


def _make_messy(frames: dict, *, seed: int, as_of: pd.Timestamp, sizes: _Sizes):
    """The messy frames (text where text can be wrong) and the full planted counts."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    opp = frames["opportunities"]
    plan, picker = _plan(rng, opp, as_of)
    broken = [plan[key] for key in plan if key in _EXCLUDING]
    excluded_ids = set(opp["opportunity_id"].to_numpy()[np.concatenate(broken)])
    history, lines = frames["stage_history"], frames["line_items"]
    out = {
        "opportunities": _messy_opportunities(rng, opp, plan, as_of, sizes),
        "stage_history": _with_orphans(rng, history, 9, sizes),
        "line_items": _messy_line_items(rng, lines, picker, opp, sizes),
        "accounts": _messy_accounts(rng, frames["accounts"]),
        "reps": frames["reps"].copy(),
        "products": frames["products"].copy(),
    }
    out["stage_history"]["entered_at"] = _timestamp_text(out["stage_history"]["entered_at"])
    out["stage_history"]["close_date"] = _date_text(out["stage_history"]["close_date"])
    out["reps"]["hire_date"] = _date_text(out["reps"]["hire_date"])
    planted = {table: _counts(MESSY_PLANTED[table]) for table in SAMPLE_TABLES}
    for table, child in (("stage_history", history), ("line_items", lines)):
        parents = child["opportunity_id"].isin(excluded_ids)
        planted[table]["excluded"]["parent_excluded"] = int(parents.sum())
    # the lines of the deals in a currency without a rate: no price of theirs can be used
    no_rate = set(opp["opportunity_id"].to_numpy()[plan["currency_without_rate"]])
    planted["line_items"]["excluded"]["currency_without_rate"] = int(
        lines["opportunity_id"].isin(no_rate).sum()
    )
    planted["rows"] = {table: len(frame) for table, frame in out.items()}
    return out, planted


# The planted problems that exclude an opportunity (its stage history and lines go with it).
_EXCLUDING = ("unknown_stage",)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check(n_opportunities, seed, as_of, messy) -> int:
    """Validate the arguments; return as_of as a day number."""
    if not isinstance(n_opportunities, int | np.integer) or n_opportunities < 100:
        raise ParameterError(
            f"n_opportunities={n_opportunities!r}: give a whole number of at least 100"
        )
    if messy and n_opportunities < 2000:
        raise ParameterError(
            f"n_opportunities={n_opportunities}: the messy sample needs at least 2000"
        )
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed={seed!r}: give a non-negative whole number")
    try:
        if not isinstance(as_of, str):  # a date, datetime or Timestamp
            as_of = pd.Timestamp(as_of).strftime("%Y-%m-%d")
        return int(np.datetime64(as_of, "D").astype(np.int64))
    except (ValueError, TypeError):
        raise ParameterError(f"as_of={as_of!r}: give a date as YYYY-MM-DD") from None


def generate_sample(
    n_opportunities: int = 20_000,
    *,
    seed: int = 7,
    as_of: str = "2026-09-30",
    messy: bool = False,
) -> dict[str, pd.DataFrame]:
    """Generate the synthetic sales sample as pandas frames, one per canonical table.

    Parameters
    ----------
    n_opportunities : int
        Number of opportunities (at least 100; at least 2000 when ``messy``). Accounts, reps
        and line items scale with it.
    seed : int
        Seed of the ``numpy`` PCG64 generator: the same arguments give identical frames.
    as_of : str
        Snapshot date (YYYY-MM-DD). Created dates span the three years ending on it, the
        latest created or closed date is exactly ``as_of``, and deals that would close later
        are open with an expected close date after it.
    messy : bool
        Plant a known number of data-quality problems (see ``MESSY_PLANTED``). Columns that
        can hold bad text (amount, dates, is_closed/is_won) are then text, as in a CSV export;
        each frame's ``attrs["planted"]`` holds its table's counts.

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys: opportunities, stage_history, line_items, accounts, reps, products.

    Examples
    --------
    >>> frames = generate_sample(2_000, seed=1)
    >>> sorted(frames)
    ['accounts', 'line_items', 'opportunities', 'products', 'reps', 'stage_history']
    >>> bool((frames["opportunities"]["amount"] >= 0).all())
    True
    """
    day = _check(n_opportunities, seed, as_of, messy)
    tables, truth = _tables(int(n_opportunities), int(seed), day)
    frames = {name: _to_pandas(tables.pop(name)) for name in SAMPLE_TABLES}
    if not messy:
        return frames
    frames, planted = _make_messy(
        frames, seed=int(seed), as_of=_timestamp(day), sizes=truth["sizes"]
    )
    for name, frame in frames.items():
        frame.attrs["planted"] = planted[name]
    return frames


def _timestamp(day: int) -> pd.Timestamp:
    return pd.Timestamp(np.datetime64(day, "D"))


def write_sample(
    out_dir,
    *,
    n_opportunities: int = 20_000,
    seed: int = 7,
    as_of: str = "2026-09-30",
    messy: bool = False,
    fmt: str | None = None,
) -> dict[str, Path]:
    """Generate the sample and write one file per table into ``out_dir``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write to (created if needed); files are ``<table>.parquet`` or ``.csv``.
    n_opportunities, seed, as_of, messy
        As in :func:`generate_sample`.
    fmt : {"parquet", "csv"}, optional
        File format; default "parquet" for the clean sample and "csv" for the messy one.
        The messy sample also writes ``planted.json``: per table, the number of rows each
        data-quality rule excludes or flags, and the number of rows written.

    Returns
    -------
    dict of str to pathlib.Path
        The file written for each table.
    """
    fmt = fmt or ("csv" if messy else "parquet")
    if fmt not in ("parquet", "csv"):
        raise ParameterError(f"fmt={fmt!r}: use 'parquet' or 'csv'")
    day = _check(n_opportunities, seed, as_of, messy)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.{fmt}" for name in SAMPLE_TABLES}
    if messy:
        frames = generate_sample(n_opportunities, seed=seed, as_of=as_of, messy=True)
        planted = {name: frame.attrs["planted"] for name, frame in frames.items()}
        planted["rows"] = {name: len(frame) for name, frame in frames.items()}
        for name, frame in frames.items():
            _write_frame(frame, paths[name], fmt)
        (out / "planted.json").write_text(json.dumps(planted, indent=2) + "\n")
        return paths
    with _Writer(paths, fmt) as sink:
        _simulate(int(n_opportunities), int(seed), day, sink)
    return paths


class _Writer:
    """Streams Arrow pieces into one file per table, on a background thread.

    The simulation of the next chunk overlaps with the writing of the last one; at most a
    few pieces wait in the queue.
    """

    def __init__(self, paths: dict[str, Path], fmt: str):
        self.paths, self.fmt = paths, fmt
        self.files: dict = {}
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: deque = deque()

    def __call__(self, name: str, table: pa.Table) -> None:
        self.pending.append(self.pool.submit(self._write, name, table))
        while len(self.pending) > 3:
            self.pending.popleft().result()

    def _write(self, name: str, table: pa.Table) -> None:
        if self.fmt == "csv":
            table = _csv_ready(table)
        if name not in self.files:
            self.files[name] = _open_writer(self.paths[name], table.schema, self.fmt, name)
        self.files[name].write_table(table)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True)
            for handle in self.files.values():
                handle.close()


def _open_writer(path: Path, schema: pa.Schema, fmt: str, name: str):
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(
            path,
            schema,
            compression="zstd",
            store_schema=False,  # read back as plain strings, not dictionaries
            use_dictionary=[c for c in schema.names if c not in NO_DICTIONARY.get(name, ())],
            dictionary_pagesize_limit=DICTIONARY_PAGE,
        )
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(path, schema)


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps to whole seconds, so that CSV cells read 2026-01-31 14:05:09."""
    columns = [
        c.cast(pa.timestamp("s")) if pa.types.is_timestamp(c.type) else c for c in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def _write_frame(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False, float_format="%.2f")
        return
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd", store_schema=False)
