"""Notebook parameters: what a notebook's ``parameters`` cell declares, and typed values for it.

Both ``salesops run`` (``-p key=value``, ``--params-file``) and ``salesops serve`` (URL query
strings) go through here, so a parameter is checked the same way wherever it comes from, and
before any kernel starts.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import logging
import tokenize
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import nbformat

from ..errors import ParameterError

__all__ = [
    "Declared",
    "declared_parameters",
    "parse_texts",
    "check_values",
    "url_parameters",
    "LOAD_PARAMETERS",
]

# The types a parameters cell may declare, and how to describe each in a message.
TYPES = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list": "a list (comma-separated, or [a, b])",
    "dict": "a mapping ({key: value})",
}
_TRUE = {"true", "1", "yes", "on"}
# Query keys that Voilà or Jupyter Server read themselves: never notebook parameters.
VOILA_KEYS = frozenset({"token", "template", "theme", "classic-tree", "_xsrf"})
# Parameters the server sets for every dashboard: a URL must not point them elsewhere.
LOCKED = {"data_path": "--data", "mapping": "--mapping"}
# Parameters read when the data is loaded, not dashboard state: a kernel that loaded its data
# before a request came (a preheated one) cannot take another value of these.
LOAD_PARAMETERS = frozenset({"data_path", "mapping", "as_of"})
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook's ``parameters`` cell.

    ``type`` is one of :data:`TYPES`, or ``""`` when neither the annotation nor the default says.
    """

    name: str
    type: str
    default: Any
    help: str = ""
    optional: bool = False


def declared_parameters(nb: nbformat.NotebookNode) -> dict[str, Declared]:
    """The parameters a notebook declares, by name.

    Parameters
    ----------
    nb
        A notebook, as read by :func:`nbformat.read`.

    Returns
    -------
    dict
        ``{name: Declared}``; empty when no cell is tagged ``parameters``.

    Notes
    -----
    Uses papermill's inspection (the one ``papermill --help-notebook`` uses), then reads the cell's
    syntax tree for what it skips: papermill drops every line with a second ``=``, such as
    ``as_of: str = ""  # empty = latest date``.
    """
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return {}
    found = {p.name: _from_papermill(p) for p in _papermill_inspect(nb, cell)}
    for name, param in _from_syntax(cell.source).items():
        if name not in found or not found[name].type:
            found[name] = param
    return found


def _papermill_inspect(nb: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> list:
    from papermill.translators import papermill_translators

    spec = nb.metadata.get("kernelspec", {})
    kernel = spec.get("name", "python3")
    language = spec.get("language") or nb.metadata.get("language_info", {}).get("name", "python")
    translator = papermill_translators.find_translator(kernel, language)
    with quiet("papermill"):
        return translator.inspect(cell)


@contextmanager
def quiet(logger_name: str):
    """Silence a logger's warnings for a while (papermill's "Unable to parse line" and
    "Passed unknown parameter": this module reads what papermill's inspection skips)."""
    log = logging.getLogger(logger_name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _from_papermill(param) -> Declared:
    default = _literal(param.default)
    annotation = "" if param.inferred_type_name == "None" else param.inferred_type_name
    kind, optional = _type_of(annotation, default)
    return Declared(param.name, kind, default, param.help, optional)


def _from_syntax(source: str) -> dict[str, Declared]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    comments = _line_comments(source)
    found = {}
    for stmt in tree.body:
        target, annotation = _target(stmt)
        if target is None:
            continue
        default = _literal(ast.unparse(stmt.value)) if stmt.value is not None else None
        kind, optional = _type_of(annotation, default)
        found[target] = Declared(target, kind, default, comments.get(stmt.lineno, ""), optional)
    return found


def _target(stmt: ast.stmt) -> tuple[str | None, str]:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, ast.unparse(stmt.annotation)
    if isinstance(stmt, ast.Assign) and [type(t) for t in stmt.targets] == [ast.Name]:
        return stmt.targets[0].id, ""
    return None, ""


def _line_comments(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        comments = [t for t in tokens if t.type == tokenize.COMMENT]
        return {t.start[0]: t.string.lstrip("#").strip() for t in comments}
    except (tokenize.TokenError, SyntaxError):
        return {}


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _type_of(annotation: str, default: Any) -> tuple[str, bool]:
    """(type, optional) from an annotation such as ``str``, ``list[str]``, ``int | None``."""
    text = annotation.strip().strip("'\"").replace(" ", "")
    optional = False
    if text.startswith("Optional[") and text.endswith("]"):
        text, optional = text[len("Optional[") : -1], True
    parts = [p for p in text.split("|") if p]
    if "None" in parts:
        parts, optional = [p for p in parts if p != "None"], True
    base = parts[0].split("[")[0].lower() if len(parts) == 1 else ""
    base = {"tuple": "list", "sequence": "list", "mapping": "dict"}.get(base, base)
    if base in TYPES:
        return base, optional
    if default is None:
        return "", True
    return (type(default).__name__ if type(default).__name__ in TYPES else ""), optional


# --------------------------------------------------------------------------------------------------
# Values


def parse_texts(
    declared: Mapping[str, Declared], texts: Mapping[str, str | list[str]], *, notebook: str
) -> dict[str, Any]:
    """Typed values from text (``-p key=value`` or a URL query string).

    Parameters
    ----------
    declared
        What the notebook declares (:func:`declared_parameters`).
    texts
        Name -> text; a list of texts for a name given more than once (list parameters only).
    notebook
        The notebook's name, for messages.

    Returns
    -------
    dict
        Name -> value of the declared type.

    Raises
    ------
    ParameterError
        An unknown name, or a text that is not of the declared type.
    """
    _check_names(declared, texts, notebook)
    return {name: _from_text(declared[name], text, notebook) for name, text in texts.items()}


def check_values(
    declared: Mapping[str, Declared], values: Mapping[str, Any], *, notebook: str
) -> dict[str, Any]:
    """Check already-typed values (a ``--params-file`` YAML) against the declared types.

    Dates become ``YYYY-MM-DD`` text and whole numbers are accepted for a float; anything else of
    the wrong type raises :class:`~salesops_widgets.errors.ParameterError`.
    """
    _check_names(declared, values, notebook)
    return {name: _checked(declared[name], value, notebook) for name, value in values.items()}


def url_parameters(
    query: Mapping[str, list[bytes | str]],
    nb: nbformat.NotebookNode,
    *,
    defaults: Mapping[str, Any],
    notebook: str,
) -> dict[str, Any]:
    """The typed parameters of one dashboard request (``salesops serve``).

    Parameters
    ----------
    query
        The request's query arguments (``{"region": [b"EMEA"]}``, as tornado gives them).
    nb
        The notebook being rendered.
    defaults
        Server-side values (``data_path``, ``mapping``) for the notebooks that declare them.
    notebook
        The notebook's name, for messages.

    Raises
    ------
    ParameterError
        An unknown name, a value of the wrong type, or a locked parameter (``data_path``,
        ``mapping``) in the URL.
    """
    texts = {}
    for key, raw in query.items():
        if key in VOILA_KEYS:
            continue
        if key in LOCKED:
            raise ParameterError(
                f"{key} cannot be set in the address: the server sets it for every dashboard "
                f"(salesops serve {LOCKED[key]})."
            )
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in raw]
        texts[key] = values if len(values) > 1 else values[0]
    declared = declared_parameters(nb)
    mine = {k: v for k, v in defaults.items() if k in declared}
    return check_values(declared, mine, notebook=notebook) | parse_texts(
        declared, texts, notebook=notebook
    )


def _check_names(declared: Mapping[str, Declared], given: Iterable[str], notebook: str) -> None:
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise ParameterError(
            f"unknown parameter {', '.join(map(repr, unknown))} for {notebook}: its parameters "
            f"cell declares {known}. Check the spelling."
        )


def _wrong(param: Declared, value: Any, notebook: str) -> ParameterError:
    return ParameterError(
        f"parameter {param.name!r} of {notebook} must be {TYPES[param.type]} "
        f"({param.type}), not {value!r}."
    )


def _from_text(param: Declared, text: str | list[str], notebook: str) -> Any:
    if isinstance(text, list) and param.type != "list":
        if len(text) != 1:
            raise ParameterError(
                f"parameter {param.name!r} of {notebook} was given {len(text)} times; give it once."
            )
        text = text[0]
    if param.optional and text in ("", "None", "null"):
        return None
    parse = _PARSERS.get(param.type, str)
    try:
        return parse(text)
    except (ValueError, TypeError, SyntaxError):
        raise _wrong(param, text, notebook) from None


def _parse_bool(text: str) -> bool:
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise ValueError(text)


def _parse_list(text: str | list[str]) -> list:
    if isinstance(text, list):
        return [item for part in text for item in _parse_list(part)]
    if text.strip().startswith(("[", "(")):
        value = ast.literal_eval(text)
        if not isinstance(value, list | tuple):
            raise ValueError(text)
        return list(value)
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_dict(text: str) -> dict:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(text) from None
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_PARSERS = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _parse_bool,
    "list": _parse_list,
    "dict": _parse_dict,
}


def _checked(param: Declared, value: Any, notebook: str) -> Any:
    if value is None and (param.optional or not param.type):
        return value
    if not param.type:
        return value
    kind = param.type
    if kind == "str" and isinstance(value, dt.date):
        return value.isoformat()
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "list" and isinstance(value, tuple):
        return list(value)
    expected = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
    ok = isinstance(value, expected[kind]) and not (kind == "int" and isinstance(value, bool))
    if not ok:
        raise _wrong(param, value, notebook)
    return value
