"""The ``salesops validate`` command: exit codes, table and JSON output, fatal messages on stderr
without a traceback, and the planted problems of the messy sample counted exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import BAD, CUSTOM, HUBSPOT, ROOT, SALESFORCE
from typer.testing import CliRunner

from salesops_widgets.cli import app
from salesops_widgets.data._schema import EXCLUDE_RULES, FLAG_RULES

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, ["validate", *map(str, args)])
    # an exit through typer.Exit/SystemExit is fine; anything else escaped the command
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    return result


def assert_fatal(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.strip(), "the message must be on stderr"
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    assert "Traceback" not in result.stderr


# -------------------------------------------------------------------------------------------------
# Usable data: exit 0
# -------------------------------------------------------------------------------------------------


def test_validate_table_output():
    result = invoke("--data", SALESFORCE, "--mapping", "salesforce")
    assert result.exit_code == 0, result.output
    for word in ("opportunities", "line_items", "currency_without_rate", "unknown_stage"):
        assert word in result.stdout


def test_validate_json_output():
    result = invoke("--data", SALESFORCE, "--mapping", "salesforce", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["usable"] is True
    assert report["as_of"] == "2025-06-06"
    opp = report["tables"]["opportunities"]
    assert (opp["rows_read"], opp["rows_used"], opp["rows_excluded"]) == (16, 12, 4)
    nonzero = {k: v for k, v in opp["excluded"].items() if v}
    assert nonzero == {
        "missing_required": 1,
        "unknown_stage": 1,
        "currency_without_rate": 1,
        "close_before_created": 1,
    }


def test_validate_as_of_option():
    # as of 2025-07-20, the open deals #7 (2025-06-30), #8 (2025-07-15) and #9 (2025-04-15) are
    # past their expected close date; #11 (2025-08-29) is not
    result = invoke(
        "--data", SALESFORCE, "--mapping", "salesforce", "--as-of", "2025-07-20", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["as_of"] == "2025-07-20"
    assert report["tables"]["opportunities"]["flagged"]["open_close_date_past"] == 3


def test_validate_custom_mapping_file():
    result = invoke("--data", CUSTOM, "--mapping", CUSTOM / "mapping.yaml", "--format", "json")
    assert result.exit_code == 0, result.output
    opp = json.loads(result.stdout)["tables"]["opportunities"]
    assert (opp["rows_read"], opp["rows_used"]) == (9, 8)


def test_validate_single_file():
    export = HUBSPOT / "hubspot-crm-exports-all-deals-2026-11-01.csv"
    result = invoke("--data", export, "--mapping", "hubspot", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"]["opportunities"]["rows_used"] == 10


# -------------------------------------------------------------------------------------------------
# Fatal problems: exit 1, message on stderr, no traceback
# -------------------------------------------------------------------------------------------------


def test_missing_column_is_fatal():
    result = invoke("--data", BAD / "missing_column.csv")
    assert_fatal(result, "missing_column.csv", "tables.opportunities.columns.amount")


def test_missing_path_is_fatal(tmp_path):
    result = invoke("--data", tmp_path / "nowhere")
    assert_fatal(result, "nowhere")


def test_unknown_mapping_is_fatal():
    result = invoke("--data", SALESFORCE, "--mapping", "salesfarce")
    assert_fatal(result, "salesfarce")


def test_header_only_is_fatal():
    result = invoke("--data", BAD / "header_only.csv")
    assert result.exit_code == 1
    assert result.stderr.strip()


def test_fatal_json_output_still_parses():
    result = invoke("--data", BAD / "empty.csv", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["usable"] is False
    assert "empty.csv" in result.stderr


@pytest.mark.parametrize("path", sorted(BAD.iterdir()), ids=lambda p: p.name)
def test_every_bad_input_exits_cleanly(path):
    result = invoke("--data", path)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert result.stderr.strip()


# -------------------------------------------------------------------------------------------------
# The installed command, in a real process
# -------------------------------------------------------------------------------------------------


def _salesops() -> list[str]:
    script = Path(sys.executable).with_name("salesops")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "salesops_widgets"]


def _run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [*_salesops(), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def test_real_process_json():
    done = _run("--data", CUSTOM, "--mapping", CUSTOM / "mapping.yaml", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tables"]["opportunities"]["excluded"]["unknown_stage"] == 1
    assert report["base_currency"] == "EUR"


def test_real_process_fatal():
    done = _run("--data", BAD / "wrong_delimiter.csv")
    assert done.returncode == 1
    assert "wrong_delimiter.csv" in done.stderr
    assert "delimiter" in done.stderr.lower()
    assert "Traceback" not in done.stderr + done.stdout


def test_python_dash_m():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "salesops_widgets",
            "validate",
            "--data",
            str(BAD / "duplicate_ids.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "duplicate_id" in done.stdout


# -------------------------------------------------------------------------------------------------
# The messy sample: every planted problem is counted exactly
# -------------------------------------------------------------------------------------------------


def _planted_tables(planted: dict) -> dict[str, dict]:
    """{table: {"excluded": {...}, "flagged": {...}, ...}} from planted.json."""
    return {
        name: spec
        for name, spec in planted.items()
        if isinstance(spec, dict) and ("excluded" in spec or "flagged" in spec)
    }


def test_messy_sample_counts_match_planted(sample_dirs):
    folder = sample_dirs["messy"]
    planted_path = folder / "planted.json"
    assert planted_path.exists(), f"{planted_path} is written by `salesops sample --messy`"
    planted = json.loads(planted_path.read_text())
    tables = _planted_tables(planted)
    assert "opportunities" in tables, planted

    result = invoke("--data", folder, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    for name, spec in tables.items():
        assert name in report["tables"], f"table {name} planted but not reported"
        got = report["tables"][name]
        for kind, rules in (("excluded", EXCLUDE_RULES), ("flagged", FLAG_RULES)):
            want = spec.get(kind, {})
            assert set(want) <= set(rules), (
                f"unknown rule in planted.json: {set(want) - set(rules)}"
            )
            for rule in rules:
                assert got[kind].get(rule, 0) == want.get(rule, 0), (name, kind, rule)
        assert got["rows_read"] == got["rows_used"] + got["rows_excluded"]

    for name, got in report["tables"].items():
        if name not in tables:  # a table without planted problems has none reported
            assert not any(got["excluded"].values()), (name, got["excluded"])
            assert not any(got["flagged"].values()), (name, got["flagged"])

    rows = planted.get("rows", {})
    for name, expected in rows.items():
        got = report["tables"][name]
        if isinstance(expected, int):
            assert got["rows_read"] == expected, name
        else:
            for key, value in expected.items():
                field = key if key.startswith("rows_") else f"rows_{key}"
                assert got[field] == value, (name, key)


@pytest.mark.parametrize(
    ("date_field", "column"), [("created_date", "created_date"), ("closed_date", "close_date")]
)
def test_kpis_period_bounds_the_chosen_date(date_field, column, sample_dirs):
    import pandas as pd

    opps = pd.read_parquet(sample_dirs["default"] / "opportunities.parquet")
    # pandas on the sample's rows: deals whose created (or close) date is in the first half of
    # 2025, and the won ones among them
    day = pd.to_datetime(opps[column])
    inside = opps[(day >= "2025-01-01") & (day <= "2025-06-30")]
    result = runner.invoke(
        app,
        ["kpis", "--data", str(sample_dirs["default"]), "--from", "2025-01-01",
         "--to", "2025-06-30", "--date-field", date_field, "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["opportunities"] == len(inside)
    assert row["won"] == int(inside["is_won"].sum())


def test_kpis_rejects_an_unknown_date_field(sample_dirs):
    result = runner.invoke(
        app, ["kpis", "--data", str(sample_dirs["default"]), "--date-field", "updated"]
    )
    assert result.exit_code != 0
    assert "date_field='updated'" in result.output and "closed_date" in result.output
    assert "Traceback" not in result.output


def test_kpis_table_says_too_few_for_rates_and_averages_of_few_closed_deals():
    import pandas as pd

    from salesops_widgets import load
    from salesops_widgets.cli import _KPI_VIEW
    from salesops_widgets.metrics import segment_kpis

    # deal type A: 2 won, 1 lost, 1 open, 3 closed deals (< 30); B: 30 won, 10 lost
    stages = ["Closed Won"] * 2 + ["Closed Lost", "Proposal"] + ["Closed Won"] * 30
    stages += ["Closed Lost"] * 10
    n = len(stages)
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(n)],
            "created_date": ["2025-01-01"] * n,
            "close_date": ["2025-02-01"] * n,
            "amount": [100.0] * n,
            "stage": stages,
            "deal_type": ["A"] * 4 + ["B"] * 40,
        }
    )
    table = segment_kpis(load({"opportunities": opps}, as_of="2025-03-01"), by=["deal_type"])
    views = {}
    for row in table.itertuples(index=False):
        views[row.deal_type] = {header: get(row) for header, get in _KPI_VIEW}
    few = [h for h, text in views["A"].items() if text == "too few to say"]
    assert few == ["win rate (95% CI)", "ASP", "won cycle (median d)", "velocity /day"]
    assert views["A"]["won"] == "2" and views["A"]["bookings"] == "200"
    # B has 40 closed deals: numbers; win rate 30 / 40 = 75%
    assert not [h for h, text in views["B"].items() if text == "too few to say"]
    assert views["B"]["win rate (95% CI)"].startswith("75")
