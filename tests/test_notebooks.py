"""The notebooks: run with papermill on the sample exports, checked as they are committed, and
their parameter defaults tied to the package constants and constructor defaults."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _python_source(source: str) -> str:
    """A code cell's source as plain Python (IPython magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _output_text(nb) -> str:
    """Every text and HTML output of an executed notebook, joined."""
    parts = []
    for cell in _code_cells(nb):
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in {"display_data", "execute_result"}:
                parts.extend(str(out.data.get(m, "")) for m in ("text/html", "text/plain"))
    return "\n".join(parts)


def _error_outputs(nb) -> list[str]:
    return [
        f"{out.ename}: {out.evalue}"
        for cell in _code_cells(nb)
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]


# --------------------------------------------------------------------------------------------------
# As committed


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebook in {NOTEBOOKS_DIR}"


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def committed(request):
    """A notebook of notebooks/, read as committed."""
    nb = nbformat.read(request.param, as_version=4)
    nbformat.validate(nb)
    return nb


def test_notebook_is_committed_without_outputs(committed):
    dirty = [
        i
        for i, cell in enumerate(committed.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert dirty == [], f"cells {dirty} have outputs or an execution count: clear them"
    assert "widgets" not in committed.metadata, "saved widget state: clear it"
    assert "papermill" not in committed.metadata, "this is papermill's output, not the source"


def test_notebook_has_kernelspec(committed):
    assert committed.metadata.get("kernelspec", {}).get("name") == "python3"
    assert committed.metadata.get("language_info", {}).get("name") == "python"


def test_notebook_has_one_parameters_cell_of_typed_commented_literals(committed):
    tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells are tagged `parameters`; want exactly one"
    cell = tagged[0]
    assert cell.cell_type == "code"

    lines = cell.source.splitlines()
    for stmt in ast.parse(cell.source).body:
        assert isinstance(stmt, ast.AnnAssign), f"not `name: type = value`: {ast.unparse(stmt)}"
        ast.literal_eval(stmt.value)  # raises on anything but a literal
        assert "#" in lines[stmt.lineno - 1], f"no comment on {ast.unparse(stmt)}"


def test_papermill_sees_every_parameter(committed, tmp_path):
    """papermill's inspection (salesops run's first check, ``papermill --help-notebook``) skips
    a line whose comment holds a second "=": every declared parameter must be visible to it."""
    import papermill as pm

    path = tmp_path / "nb.ipynb"
    nbformat.write(committed, path)
    tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    declared = [s.target.id for c in tagged for s in ast.parse(c.source).body]
    assert list(pm.inspect_notebook(str(path))) == declared


def test_notebook_assigns_parameters_only_in_the_parameters_cell(committed):
    tagged = [c for c in committed.cells if "parameters" in c.metadata.get("tags", [])]
    names = {s.target.id for c in tagged for s in ast.parse(c.source).body}
    for cell in _code_cells(committed):
        if any(cell is t for t in tagged):
            continue
        for node in ast.walk(ast.parse(_python_source(cell.source))):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assert node.id not in names, f"parameter {node.id} reassigned in:\n{cell.source}"


def test_notebook_defines_no_function_or_class(committed):
    for cell in _code_cells(committed):
        tree = ast.parse(_python_source(cell.source))
        defined = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        assert defined == [], f"move {defined} into the package; notebooks only call it"


# --------------------------------------------------------------------------------------------------
# Parameter defaults tied to the package

# Literals of a parameters cell that mirror a package constant: (notebook, parameter, constant).
MIRRORED_CONSTANTS = [
    ("sticker_shock.ipynb", "discount_bands", "salesops_widgets.metrics.DISCOUNT_BANDS"),
    ("sticker_shock.ipynb", "size_edges", "salesops_widgets.metrics.DEAL_SIZE_EDGES"),
    ("segmentation_explorer.ipynb", "kpis", "salesops_widgets.apps.DEFAULT_KPIS"),
    ("driver_tree.ipynb", "path", "salesops_widgets.apps.DEFAULT_PATH"),
]
# Defaults a notebook chooses on purpose instead of the constructor's: (notebook, parameter) ->
# why. Every other parameter a notebook passes straight to the package has the package's default.
NOTEBOOK_CHOICES = {
    ("segmentation_explorer.ipynb", "second_dimension"): (
        "the page crosses the segments with region for its table and heatmap; "
        "SegmentationExplorer's default is no second dimension"
    ),
    ("goal_tracking.ipynb", "goals_path"): (
        "the page tracks the example goals of the default sample; GoalTracking has no default "
        "goals file"
    ),
    ("sticker_shock.ipynb", "compare_segments"): (
        "the page compares SMB with Enterprise; StickerShock's default () takes the two largest"
    ),
}


def _parameters(path: Path) -> dict:
    """The parameters cell of a notebook as {name: literal value}."""
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return {s.target.id: ast.literal_eval(s.value) for s in ast.parse(cell.source).body}


def _comparable(value):
    """Lists as tuples (a notebook writes [..] where the package keeps a tuple), recursively."""
    if isinstance(value, list | tuple):
        return tuple(_comparable(v) for v in value)
    return value


def _resolve(dotted: str):
    """The object a dotted name such as ``salesops_widgets.metrics.DISCOUNT_BANDS`` names."""
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    ("notebook", "parameter", "constant"),
    MIRRORED_CONSTANTS,
    ids=[f"{nb.removesuffix('.ipynb')}-{name}" for nb, name, _ in MIRRORED_CONSTANTS],
)
def test_parameter_literals_equal_the_package_constants(notebook, parameter, constant):
    parameters = _parameters(NOTEBOOKS_DIR / notebook)
    assert parameter in parameters, f"{notebook} no longer declares {parameter}: update this test"
    got, expected = parameters[parameter], _resolve(constant)
    assert _comparable(got) == _comparable(expected), (
        f"{notebook}: parameter {parameter} = {got!r}, but {constant} = {expected!r}; "
        "make the notebook's default the package's"
    )


def _package_calls(nb) -> list[tuple[str, ast.Call]]:
    """The calls in a notebook's code cells to what it imports from salesops_widgets, as
    (dotted name of the callee, call)."""
    trees = [ast.parse(_python_source(cell.source)) for cell in _code_cells(nb)]
    imported = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("salesops_widgets")
        for alias in node.names
    }
    return [
        (imported[node.func.id], node)
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in imported
    ]


def _passed(value: ast.expr, parameters: dict) -> tuple[str, object] | None:
    """(parameter, the value the callee gets) when a keyword argument passes a parameter on:
    ``x=param`` or ``x=param or <literal>``; None for anything else."""
    if isinstance(value, ast.Name) and value.id in parameters:
        return value.id, parameters[value.id]
    if (
        isinstance(value, ast.BoolOp)
        and isinstance(value.op, ast.Or)
        and len(value.values) == 2
        and isinstance(value.values[0], ast.Name)
        and value.values[0].id in parameters
        and isinstance(value.values[1], ast.Constant)
    ):
        name = value.values[0].id
        return name, parameters[name] or value.values[1].value
    return None


def _keyword_defaults(callee) -> dict[str, object]:
    """The keyword parameters a function or class takes, with their defaults
    (``inspect.Parameter.empty`` when required). A class whose ``__init__`` takes ``**options``
    passes them on to its base (``super().__init__(data, **options)``), so the bases' parameters
    count too, the nearest first."""
    if not isinstance(callee, type):
        return _own_keywords(inspect.signature(callee))[0]
    found: dict[str, object] = {}
    for owner in (k for k in callee.__mro__ if "__init__" in vars(k)):
        keywords, forwards = _own_keywords(inspect.signature(owner.__init__))
        found = keywords | found
        if not forwards:
            break
    return found


def _own_keywords(signature: inspect.Signature) -> tuple[dict[str, object], bool]:
    """({keyword: default}, whether it takes ``**kwargs``) of one signature."""
    params = list(signature.parameters.values())
    keywords = {
        p.name: p.default for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return keywords, any(p.kind is p.VAR_KEYWORD for p in params)


def _passed_on(path: Path) -> list[tuple[str, str, object, object]]:
    """(parameter, ``callee(keyword=...)``, the value the callee gets, the callee's default) for
    every parameter the notebook passes straight to a package function or dashboard."""
    parameters = _parameters(path)
    found = []
    for callee, call in _package_calls(nbformat.read(path, as_version=4)):
        defaults = _keyword_defaults(_resolve(callee))
        for keyword in call.keywords:
            passed = _passed(keyword.value, parameters)
            if passed is None:
                continue
            name, value = passed
            assert keyword.arg in defaults, (
                f"{path.name} passes {name} as {keyword.arg}=, which {callee} does not take"
            )
            default = defaults[keyword.arg]
            if default is not inspect.Parameter.empty:
                found.append((name, f"{callee}({keyword.arg}=...)", value, default))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_parameters_passed_on_have_the_package_defaults(path):
    """A parameter the notebook passes straight to a package function or dashboard has that
    callee's default (``inspect.signature``, the dashboard base's for what a dashboard passes on
    with ``**options``), unless NOTEBOOK_CHOICES says why not."""
    notebook, passed_on = path.name, _passed_on(path)
    assert passed_on, f"{notebook} passes no parameter to the package: is this test still right?"
    for name, target, value, default in passed_on:
        if (notebook, name) in NOTEBOOK_CHOICES:
            assert _comparable(value) != _comparable(default), (
                f"{notebook}: parameter {name} = {value!r} is now the default of {target}: "
                "remove it from NOTEBOOK_CHOICES"
            )
            continue
        # None is "not given", which the dashboards read as empty: list(x or []), dict(x or {})
        if default is None and value in ([], {}, ()):
            value = None
        assert _comparable(value) == _comparable(default), (
            f"{notebook}: parameter {name} = {value!r}, but {target} defaults to {default!r}; "
            "make them agree, or say why in NOTEBOOK_CHOICES"
        )
    chosen = {name for nb, name in NOTEBOOK_CHOICES if nb == notebook}
    stale = chosen - {name for name, *_ in passed_on}
    assert not stale, (
        f"NOTEBOOK_CHOICES lists {sorted(stale)} of {notebook}, which it no longer passes on"
    )


# --------------------------------------------------------------------------------------------------
# Executed


def test_python3_kernel_runs_this_environment():
    """papermill and Voilà start the `python3` kernel: it must be this venv's Python."""
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # jupyter_client runs a bare `python` as the Python that starts the kernel.
    exe = sys.executable if argv[0] in {"python", "python3"} else argv[0]
    prefix = subprocess.run(
        [exe, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert prefix == sys.prefix, f"the python3 kernel runs {exe}; run `make install`"


def run_notebook(name: str, tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    """Execute notebooks/NAME with papermill, from the notebooks folder, and return the result."""
    import papermill as pm

    out = tmp_path / name
    pm.execute_notebook(
        str(NOTEBOOKS_DIR / name),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
        log_output=False,
        execution_timeout=600,
    )
    return nbformat.read(out, as_version=4)


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("default", ["opportunities", "samples/default"]),
        ("messy", ["opportunities", "samples/messy", "duplicate_id"]),
    ],
)
def test_data_quality_notebook_runs_on_sample(name, expected, sample_dirs, tmp_path):
    # The default sample runs with the notebook's own defaults.
    parameters = {} if name == "default" else {"data_path": str(sample_dirs[name])}
    nb = run_notebook("data_quality.ipynb", tmp_path, **parameters)

    assert _error_outputs(nb) == []
    text = _output_text(nb)
    missing = [word for word in expected if word not in text]
    assert missing == [], f"not in the outputs: {missing}"
