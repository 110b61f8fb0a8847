"""The notebooks: run with papermill on the sample exports, and checked as they are committed."""

from __future__ import annotations

import ast
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
