"""The ``salesops`` command.

Subcommands: ``validate`` (data-quality report), ``kpis`` (segment KPI table), ``sample``
(synthetic data), ``run`` (scheduled notebook reports), ``serve`` (Voilà dashboards) and
``prepare`` (prepared data for both). Every
user error is printed as one clear message with exit code 1 (2 for bad arguments), never a
traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ._catalog import CATALOGUE, KPI
from .errors import ParameterError, SalesOpsError

app = typer.Typer(
    name="salesops",
    help=(
        "Sales-ops analytics on your CRM data: validate exports, compute KPIs, make sample data, "
        "run the notebooks as reports, serve them as dashboards."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="Folder of CSV/Parquet, .xlsx, .duckdb file, database URL (postgresql://...) or "
        "pyspark:///FOLDER?spark.master=... (see docs/deploy.md).",
    ),
]
MappingOpt = Annotated[
    str,
    typer.Option("--mapping", help="canonical, salesforce, hubspot, or a mapping YAML file."),
]
NotebooksOpt = Annotated[
    Path | None,
    typer.Option("--notebooks", help="Folder of notebooks (default: the checkout's notebooks/)."),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Read the files again instead of the prepared data (SALESOPS_NO_CACHE)."
    ),
]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="Folder of prepared data (default: .salesops-cache beside the data)."
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="As-of date YYYY-MM-DD (default: latest date in the data)."),
]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"salesops-widgets {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Sales-ops analytics on your CRM data."""


_NAMES = ("table", "rule", "column")  # short names that never wrap (rule names stay readable)


def _table(title: str, frame, columns: dict[str, str], counts: tuple[str, ...] = ()) -> Any:
    """A rich table of ``frame``'s ``columns`` (column -> header), counts written 1,234."""
    from rich.table import Table

    t = Table(title=title)
    for column, header in columns.items():
        t.add_column(header, no_wrap=column in _NAMES)
    for _, r in frame.iterrows():
        t.add_row(*(f"{r[c]:,}" if c in counts else str(r[c]) for c in columns))
    return t


def _print_report(report) -> None:
    from rich.console import Console

    console = Console(width=max(100, Console().width))
    console.print(
        f"[bold]Data-quality report[/bold]  source: {report.source}  mapping: {report.mapping}  "
        f"as of: {report.as_of or '-'}  base currency: {report.base_currency or '-'}"
    )
    for w in report.all_warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    rows = {"table": "table", "source": "source", "rows_read": "read", "rows_used": "used"}
    rows |= {"rows_excluded": "excluded", "rows_flagged": "flagged"}
    counts = ("rows_read", "rows_used", "rows_excluded", "rows_flagged", "rows", "counted")
    counts += ("left_out", "empty", "unparseable", "no_match_read", "no_match_used")
    sections = (
        ("Rows (read = used + excluded)", report.summary_frame(), rows),
        (
            "Excluded and flagged rows, by rule",
            report.issues_frame(),
            {"table": "table", "rule": "rule", "action": "action", "rows": "rows"}
            | {"description": "what it means", "examples": "examples"},
        ),
        (
            "Which opportunities each KPI counts (of the rows used)",
            report.populations_frame(),
            {"kpi": "KPI", "counts": "counts", "counted": "counted", "left_out": "left out"}
            | {"why left out": "why left out"},
        ),
        (
            "Empty or unparseable values per column (of the rows read)",
            report.columns_frame(),
            {"table": "table", "column": "column", "rows_read": "rows read", "empty": "empty"}
            | {"unparseable": "unparseable"},
        ),
        (
            "Lookups: keys that found no match",
            report.lookups_frame(),
            {"table": "table", "column": "column", "from": "from", "no_match_read": "of read"}
            | {"no_match_used": "of used", "unmatched keys": "unmatched keys (closest known)"},
        ),
    )
    for title, frame, columns in sections:
        if len(frame):
            console.print(_table(title, frame, columns, counts))
    _print_notes(console, report)


def _print_notes(console: Any, report) -> None:
    for name, rep in report.tables.items():
        for rule, values in rep.unmatched.items():
            shown = ", ".join(f"{k} ({n})" for k, n in list(values.items())[:10])
            console.print(f"{name}.{rule}: {shown}")
        for note in rep.notes:
            console.print(f"note ({name}): {note}")
    if report.missing_tables:
        console.print(f"Optional tables not found: {', '.join(report.missing_tables)}")


@app.command()
def validate(
    data: DataOpt,
    mapping: MappingOpt = "canonical",
    as_of: AsOfOpt = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Check a CRM export: rows read, used and excluded per table, by rule.

    Exits 0 when the data is usable (exclusions included), 1 on a fatal problem.
    """
    from .data import validate as run_validate

    if format not in ("table", "json"):
        _fail(f"--format must be 'table' or 'json', not {format!r}.", 2)
    try:
        report = run_validate(data, mapping=mapping, as_of=as_of)
    except SalesOpsError as exc:
        if format == "json":
            typer.echo(json.dumps({"usable": False, "fatal": str(exc)}, indent=2))
        _fail(str(exc))
    if format == "json":
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        _print_report(report)
    if not report.usable:
        _fail(report.fatal or "no usable opportunities")


def _num(value) -> str:
    """A count, amount or number of days: 1,234; '-' when undefined."""
    return "-" if value is None or value != value else f"{value:,.0f}"


def _pct(value) -> str:
    """A rate or discount: 12.3%; '-' when undefined."""
    return "-" if value is None or value != value else f"{value:.1%}"


@app.command()
def kpis(
    data: DataOpt,
    mapping: MappingOpt = "canonical",
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Dimension to group by (repeatable).")
    ] = None,
    as_of: AsOfOpt = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Keep only DIM=VALUE[,VALUE...] (repeatable)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="On or after this date (see --date-field).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="On or before this date (see --date-field).")
    ] = None,
    date_field: Annotated[
        str,
        typer.Option(
            "--date-field",
            help="What --from/--to bound: created_date (deals created in the period) or "
            "closed_date (deals closed in it).",
        ),
    ] = "created_date",
    format: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    total: Annotated[
        bool,
        typer.Option("--total/--no-total", help='With --by, add the overall row ("(total)") last.'),
    ] = True,
) -> None:
    """Print the segment KPI table (win rate with interval, ASP, bookings, cycle, discount)."""
    import pandas as pd

    from . import metrics
    from .data import load as run_load
    from .metrics._drivers import TOTAL

    if format not in ("table", "csv", "json"):
        _fail(f"--format must be 'table', 'csv' or 'json', not {format!r}.", 2)
    filters: dict[str, list[str]] = {}
    for item in filter_ or []:
        dim, sep, values = item.partition("=")
        if not sep or not values:
            _fail(f"--filter {item!r} must look like DIM=VALUE or DIM=VALUE1,VALUE2.", 2)
        filters.setdefault(dim.strip(), []).extend(v.strip() for v in values.split(","))
    selection = {
        "filters": filters,
        "period": (start, end) if start or end else None,
        "date_field": date_field,
    }
    try:
        loaded = run_load(data, mapping=mapping, as_of=as_of)
        table = metrics.segment_kpis(loaded, by=by or [], **selection)
        if by and total:
            overall = metrics.segment_kpis(loaded, **selection).assign(**dict.fromkeys(by, TOTAL))
            table = pd.concat([table, overall[table.columns]], ignore_index=True)
    except SalesOpsError as exc:
        _fail(str(exc))
    if format == "csv":
        typer.echo(table.to_csv(index=False), nl=False)
        return
    if format == "json":
        typer.echo(table.to_json(orient="records", indent=2, date_format="iso"))
        return
    _print_kpis(table, by or [], loaded)


# The terminal view's columns (csv and json carry every column), named, formatted and marked
# "too few to say" as the KPI catalogue says; the win rate is shown with its interval.
_KPI_COLUMNS = (
    "opportunities",
    "open",
    "won",
    "lost",
    "win_rate",
    "asp",
    "bookings",
    "median_cycle_days_won",
    "km_median_days_to_close",
    "portfolio_discount",
    "velocity",  # multiplies the win rate and ASP, so it is no surer than they are
)
_WITH_INTERVAL = ("win_rate",)


def _kpi_text(row, kpi: KPI, interval: bool) -> str:
    """One cell: the value, with its 95% interval when asked; "too few to say" for a KPI of
    closed deals on a row with too few of them (as the dashboards show it)."""
    if kpi.small_n and row.small_n:
        from ._catalog import TOO_FEW

        return TOO_FEW
    text = _pct if kpi.kind == "percent" else _num
    shown = text(getattr(row, kpi.column))
    if interval:
        shown += f" ({text(getattr(row, kpi.low))}–{text(getattr(row, kpi.high))})"
    return shown


def _kpi_column(column: str) -> tuple[str, Callable[[Any], str]]:
    """(header, function of a row) of one column of the terminal view."""
    kpi, interval = CATALOGUE[column], column in _WITH_INTERVAL
    header = f"{kpi.short} (95% CI)" if interval else kpi.short
    return header, lambda row: _kpi_text(row, kpi, interval)


_KPI_VIEW = tuple(_kpi_column(c) for c in _KPI_COLUMNS)


def _print_kpis(table, by: list[str], loaded) -> None:
    from rich.console import Console
    from rich.table import Table

    from .data._populations import population_of

    out = Table(title=f"KPIs as of {loaded.as_of} ({loaded.base_currency or 'amounts'})")
    for dim in by:
        out.add_column(dim)
    for header, _ in _KPI_VIEW:
        out.add_column(header, justify="right")
    for row in table.itertuples(index=False):
        dims = [str(getattr(row, d)) for d in by]
        out.add_row(*dims, *(get(row) for _, get in _KPI_VIEW))
    console = Console(width=max(160, Console().width))
    console.print(out)
    for w in loaded.report.warnings_for(_KPI_COLUMNS):
        console.print(f"[yellow]warning:[/yellow] {w}")
    counted = [
        f"{CATALOGUE[c].short}: {population_of(c)}" for c in _KPI_COLUMNS if population_of(c)
    ]
    console.print("Each KPI counts " + "; ".join(counted) + ".")
    typer.echo("All columns: --format csv or --format json. Definitions: docs/metrics.md.")


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sample into.")],
    opportunities: Annotated[
        int, typer.Option("--opportunities", min=1, help="Number of opportunities.")
    ] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 7,
    messy: Annotated[
        bool, typer.Option("--messy", help="Plant known data-quality problems (CSV output).")
    ] = False,
    as_of: Annotated[str, typer.Option("--as-of", help="As-of date of the sample.")] = "2026-09-30",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="parquet or csv (default: parquet; csv if messy)."),
    ] = None,
) -> None:
    """Write a deterministic synthetic B2B sales dataset with planted effects."""
    from .data._sample import write_sample

    if fmt not in (None, "parquet", "csv"):
        _fail(f"--format must be 'parquet' or 'csv', not {fmt!r}.", 2)
    try:
        paths = write_sample(
            out, n_opportunities=opportunities, seed=seed, as_of=as_of, messy=messy, fmt=fmt
        )
    except SalesOpsError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"could not write to {out}: {exc.strerror or exc}. Choose a writable --out folder.")
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


@app.command("run")
def run_reports(
    notebook: Annotated[
        str, typer.Argument(help="A notebook (path, or name in the notebooks folder), or all.")
    ],
    data: DataOpt,
    out: Annotated[
        Path, typer.Option("--out", help="Report folder: OUT/<notebook>/<timestamp>/, latest.")
    ],
    mapping: MappingOpt = "canonical",
    param: Annotated[
        list[str] | None,
        typer.Option("-p", "--param", help="A notebook parameter, key=value (repeatable)."),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", help="YAML file of name: value parameters.")
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Notebooks run at once (in parallel processes).")
    ] = 1,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, help="Seconds one cell may run (default: no limit)."),
    ] = None,
    notebooks: NotebooksOpt = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Run notebooks with papermill: an executed notebook, an HTML report and a manifest each.

    Exits 0 when every notebook ran, 1 when one failed or the data cannot be read.

    Exits 2 for an unknown notebook or parameter, or a wrong type (checked before any kernel).
    """
    from .runs import run_notebooks

    _cache_environment(no_cache, cache_dir, loads_here=True)
    try:
        results = run_notebooks(
            notebook,
            data=data,
            out=out,
            mapping=mapping,
            assignments=param or [],
            params_file=params_file,
            workers=jobs,
            timeout=timeout,
            notebooks_dir=notebooks,
        )
    except ParameterError as exc:
        _fail(str(exc), 2)
    except SalesOpsError as exc:
        _fail(str(exc))
    _print_runs(results, out)
    failed = [r for r in results if not r.ok]
    for r in failed:
        typer.echo(
            f"error: {r.notebook} failed at {r.failure.describe()}\n"
            f"  The executed notebook is kept in {r.folder}; the last good report "
            f"({r.folder.parents[1] / 'latest'}) is untouched.",
            err=True,
        )
    if failed:
        raise typer.Exit(1)


def _print_runs(results, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("notebook", "status", "seconds", "folder", "problem", title=f"Runs in {out}")
    for r in results:
        status = "[green]ok[/green]" if r.ok else "[red]failed[/red]"
        problem = r.failure.describe() if r.failure else ""
        folder = (
            r.folder.relative_to(out.absolute())
            if r.folder.is_relative_to(out.absolute())
            else r.folder
        )
        table.add_row(r.notebook, status, f"{r.seconds:.1f}", str(folder), problem)
    console = Console(width=max(120, Console().width))
    console.print(table)
    for w in _run_warnings(results):
        console.print(f"[yellow]data warning:[/yellow] {w}")


def _run_warnings(results) -> list[str]:
    """The data's warnings, as the runs' manifests recorded them (the same data for all)."""
    for r in results:
        manifest = r.folder / "manifest.json"
        if manifest.is_file():
            return list(json.loads(manifest.read_text()).get("warnings", []))
    return []


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8866,
    token: Annotated[
        str | None, typer.Option("--token", help="Require this token (?token=...).")
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Default data_path of every dashboard.")
    ] = None,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    mapping: Annotated[
        str | None, typer.Option("--mapping", help="Default mapping of every dashboard.")
    ] = None,
    notebooks: NotebooksOpt = None,
    base_url: Annotated[
        str, typer.Option("--base-url", help="URL prefix, behind a reverse proxy (/salesops/).")
    ] = "/",
    goals: Annotated[
        str | None, typer.Option("--goals", help="Goals file of the goal tracking (YAML).")
    ] = None,
    history: Annotated[
        str | None,
        typer.Option("--history", help="Run history of the goal tracking (OUT/history)."),
    ] = None,
    cull_idle: Annotated[
        int, typer.Option("--cull-idle", min=0, help="Stop kernels idle this many seconds.")
    ] = 1200,
    preheat: Annotated[
        int,
        typer.Option(
            "--preheat",
            min=0,
            help="Kernels kept ready per dashboard, having run it (0: each page starts one).",
        ),
    ] = 1,
    pool: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            help="DASHBOARD=N: preheated kernels for this dashboard instead (repeatable).",
        ),
    ] = None,
) -> None:
    """Serve the notebooks as Voilà dashboards (no code shown, no request to the internet).

    URL query parameters (?region=EMEA&as_of=2026-09-30) set the notebook's parameters, on a
    preheated kernel too.
    """
    from .runs import find_notebooks_dir
    from .serve import ServeOptions, parse_pools
    from .serve import serve as run_server

    _cache_environment(no_cache, cache_dir, loads_here=False)
    try:
        options = ServeOptions(
            notebooks=find_notebooks_dir(notebooks),
            host=host,
            port=port,
            token=token,
            base_url=base_url,
            data=data,
            mapping=mapping,
            goals=goals,
            history=history,
            cull_idle_seconds=cull_idle,
            preheat=preheat,
            pools=parse_pools(pool or []),
        )
        run_server(options)
    except ParameterError as exc:
        _fail(str(exc), 2)
    except SalesOpsError as exc:
        _fail(str(exc))


@app.command()
def prepare(
    data: DataOpt,
    mapping: MappingOpt = "canonical",
    as_of: AsOfOpt = None,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Load and validate the data once and keep it as prepared data (a DuckDB file).

    Run it after each export (e.g. from cron): dashboards, runs and load() then open the prepared
    file in well under a second while the files are unchanged. See docs/deploy.md.
    """
    from .data import prepare as prepare_data

    _cache_environment(False, None, loads_here=True)
    try:
        done = prepare_data(data, mapping=mapping, as_of=as_of, cache_dir=cache_dir)
    except SalesOpsError as exc:
        _fail(str(exc))
    typer.echo(f"prepared: {done.path} ({done.bytes / 1e6:,.1f} MB)")
    typer.echo(
        f"seconds: load and validate {done.load_seconds:.2f}, derived tables "
        f"{done.derive_seconds:.2f} ({', '.join(done.stored) or 'none'}), write "
        f"{done.write_seconds:.2f}"
    )


def _cache_environment(no_cache: bool, cache_dir: Path | None, *, loads_here: bool) -> None:
    """Pass --no-cache / --cache-dir to load() here and in every kernel started from here.

    ``loads_here``: this process loads the data too (``run`` validates it first, ``prepare``):
    import the metrics layer, which registers the deals table with the prepared files written.
    """
    if loads_here:
        from . import metrics  # noqa: F401
    if no_cache:
        os.environ["SALESOPS_NO_CACHE"] = "1"
    if cache_dir is not None:
        os.environ["SALESOPS_CACHE_DIR"] = str(cache_dir.absolute())


def run() -> None:  # pragma: no cover - console entry point wrapper
    """Entry point that never shows a traceback for a user error.

    Set SALESOPS_DEBUG=1 to see the traceback of an unexpected error.
    """
    try:
        app()
    except SalesOpsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("SALESOPS_DEBUG"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {first}"
            f"\nThis is a bug in salesops-widgets, not in your data. Rerun with SALESOPS_DEBUG=1 "
            f"for the traceback and report it.",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    run()
