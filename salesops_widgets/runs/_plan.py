"""Which notebooks to run, with which parameters: everything checked before a kernel starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat

from ..errors import ParameterError
from ._parameters import Declared, check_values, declared_parameters, parse_texts

__all__ = [
    "find_notebooks_dir",
    "find_notebooks",
    "parse_assignments",
    "read_params_file",
    "absolute_source",
    "notebook_parameters",
]

# Parameters set by --data and --mapping, never by -p or a params file.
SERVER_SET = {"data_path": "--data", "mapping": "--mapping"}
_PRESETS = {"canonical", "salesforce", "hubspot"}


def find_notebooks_dir(given: Path | None = None) -> Path:
    """The folder of the notebooks: ``given``, else this checkout's ``notebooks/``, else
    ``./notebooks``.

    Raises
    ------
    ParameterError
        None of them is a folder.
    """
    if given is not None:
        if not given.is_dir():
            raise ParameterError(f"--notebooks {given}: no such folder.")
        return given.resolve()
    checkout = Path(__file__).resolve().parents[2] / "notebooks"
    for candidate in (checkout, Path.cwd() / "notebooks"):
        if candidate.is_dir():
            return candidate
    raise ParameterError(
        f"no notebooks folder found ({checkout} or ./notebooks): pass --notebooks DIR."
    )


def find_notebooks(target: str, notebooks_dir: Path) -> list[Path]:
    """``all`` -> every notebook of ``notebooks_dir``; else the one notebook ``target`` names
    (a path, or a name in ``notebooks_dir`` with or without ``.ipynb``)."""
    available = sorted(
        p for p in notebooks_dir.glob("*.ipynb") if not p.name.startswith((".", "_"))
    )
    if target == "all":
        if not available:
            raise ParameterError(f"no notebook (*.ipynb) in {notebooks_dir}.")
        return available
    for candidate in (Path(target), notebooks_dir / target, notebooks_dir / f"{target}.ipynb"):
        if candidate.is_file() and candidate.suffix == ".ipynb":
            return [candidate.resolve()]
    names = ", ".join(p.stem for p in available) or "none"
    raise ParameterError(
        f"notebook {target!r} not found: give a path to an .ipynb file, `all`, or one of the "
        f"notebooks in {notebooks_dir}: {names}."
    )


def parse_assignments(items: Iterable[str]) -> dict[str, str | list[str]]:
    """``["region=EMEA", "k=1"]`` -> ``{"region": "EMEA", "k": "1"}``; a repeated key -> list."""
    found: dict[str, str | list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p {item!r} must look like key=value (e.g. -p region=EMEA).")
        key = key.strip()
        if key in found:
            previous = found[key]
            found[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            found[key] = value
    return found


def read_params_file(path: Path | None) -> dict[str, Any]:
    """The parameters of a YAML file (``name: value`` lines); {} without a file."""
    if path is None:
        return {}
    import yaml

    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ParameterError(f"--params-file {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"--params-file {path} is not valid YAML: {exc}") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ParameterError(f"--params-file {path} must hold `name: value` lines.")
    return values


def absolute_source(value: str) -> str:
    """A ``--data`` or ``--mapping`` value that works from any folder.

    Notebook kernels run in the notebook's folder, so a relative path is made absolute; a
    database URL and a mapping preset name stay as they are.
    """
    if "://" in value or value in _PRESETS:
        return value
    return str(Path(value).expanduser().absolute())


def notebook_parameters(
    notebooks: list[Path],
    *,
    texts: Mapping[str, str | list[str]],
    values: Mapping[str, Any],
    server: Mapping[str, Any],
) -> dict[Path, dict[str, Any]]:
    """The checked, typed parameters of each notebook.

    A parameter goes to every notebook that declares it; a name that no notebook declares, or
    a value of the wrong type for a notebook that declares it, raises ParameterError.
    ``server`` holds ``data_path`` and ``mapping`` (from --data/--mapping).
    """
    given = {*texts, *values}
    clash = sorted(given & set(SERVER_SET))
    if clash:
        name = clash[0]
        raise ParameterError(f"set {name} with {SERVER_SET[name]}, not with -p or a params file.")
    declared = {path: declared_parameters(nbformat.read(path, as_version=4)) for path in notebooks}
    if len(notebooks) > 1:
        _check_declared_somewhere(given, declared)
    result = {}
    for path, decl in declared.items():
        mine = decl if len(notebooks) > 1 else None
        params = check_values(decl, _pick(values, mine), notebook=path.name)
        params |= parse_texts(decl, _pick(texts, mine), notebook=path.name)
        params |= check_values(decl, _pick(server, decl), notebook=path.name)
        result[path] = params
    return result


def _pick(given: Mapping[str, Any], declared: Mapping[str, Declared] | None) -> dict[str, Any]:
    """The entries of ``given`` that ``declared`` names (all of them when it is None)."""
    return dict(given) if declared is None else {k: v for k, v in given.items() if k in declared}


def _check_declared_somewhere(
    given: set[str], declared: Mapping[Path, Mapping[str, Declared]]
) -> None:
    known = set().union(*(d.keys() for d in declared.values()))
    unknown = sorted(given - known)
    if unknown:
        raise ParameterError(
            f"unknown parameter {', '.join(map(repr, unknown))}: no notebook declares it. "
            f"The notebooks declare {', '.join(sorted(known)) or 'nothing'}."
        )
