"""Mappings: how a source's files and columns become the canonical tables.

A mapping is a YAML document (presets live in ``presets/``; users write their own).
See docs/mappings.md for the reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import MappingError
from ._schema import STATUSES, TABLES

__all__ = ["Lookup", "TableMapping", "Mapping", "norm_label", "resolve_mapping", "PRESETS"]

_PRESET_DIR = Path(__file__).parent / "presets"
PRESETS = tuple(sorted(p.stem for p in _PRESET_DIR.glob("*.yaml")))

_TOP_KEYS = {
    "name",
    "description",
    "extends",
    "base_currency",
    "date_formats",
    "decimal_comma",
    "tables",
}
_TABLE_KEYS = {"source", "columns", "stages", "values", "date_formats", "lookups"}
_LOOKUP_KEYS = {"column", "source", "key", "lookup_key", "value", "key_values", "optional"}


@dataclass(frozen=True)
class Lookup:
    """Fill canonical ``column`` from ``source``.``value``, joining ``key`` = ``lookup_key``.

    ``key_values`` cleans the row's key before the join: a map of raw key -> key, or the name
    of a canonical column of the table whose ``values`` map to use (by default, the values map
    of the canonical column read from the ``key`` column, if any).
    """

    column: str
    source: tuple[str, ...]
    key: str
    lookup_key: str
    value: str
    optional: bool = False
    key_values: dict[str, str] | str | None = None


@dataclass(frozen=True)
class TableMapping:
    """How one canonical table is found and renamed."""

    table: str
    source: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    date_formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lookups: tuple[Lookup, ...] = ()


@dataclass(frozen=True)
class Mapping:
    """A whole mapping: one TableMapping per canonical table, plus global options."""

    name: str
    origin: str
    tables: dict[str, TableMapping]
    base_currency: str | None = None
    date_formats: tuple[str, ...] = ()
    decimal_comma: bool = False
    description: str = ""

    def key(self, table: str, *parts: str) -> str:
        """The mapping key a user edits, e.g. ``tables.opportunities.columns.amount``."""
        return ".".join(("tables", table, *parts))


def _as_tuple(value: Any, where: str, origin: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise MappingError(f"{origin}: {where} must be a name or a list of names, got {value!r}.")


def _as_str_dict(value: Any, where: str, origin: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{origin}: {where} must be a mapping of name: value, got {value!r}.")
    return {str(k): str(v) for k, v in value.items()}


def _check_keys(obj: dict, allowed: set[str], where: str, origin: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise MappingError(
            f"{origin}: unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )


def _parse_lookup(raw: Any, table: str, i: int, origin: str) -> Lookup:
    where = f"tables.{table}.lookups[{i}]"
    if not isinstance(raw, dict):
        raise MappingError(f"{origin}: {where} must be a mapping with column, source, key, value.")
    _check_keys(raw, _LOOKUP_KEYS, where, origin)
    missing = [k for k in ("column", "source", "key", "value") if k not in raw]
    if missing:
        raise MappingError(f"{origin}: {where} needs {', '.join(missing)}.")
    if raw["column"] not in {c.name for c in TABLES[table]}:
        raise MappingError(
            f"{origin}: {where}.column {raw['column']!r} is not a canonical column of {table}."
        )
    return Lookup(
        column=str(raw["column"]),
        source=_as_tuple(raw["source"], f"{where}.source", origin),
        key=str(raw["key"]),
        lookup_key=str(raw.get("lookup_key", raw["key"])),
        value=str(raw["value"]),
        optional=bool(raw.get("optional", False)),
        key_values=_key_values(raw.get("key_values"), table, f"{where}.key_values", origin),
    )


def _key_values(raw: Any, table: str, where: str, origin: str) -> dict[str, str] | str | None:
    """A lookup's key cleaning map: a mapping, or a canonical column of ``table``."""
    if raw is None or isinstance(raw, dict):
        return _as_str_dict(raw, where, origin) or None
    names = {c.name for c in TABLES[table]}
    if str(raw) not in names:
        raise MappingError(
            f"{origin}: {where} must be a map of key: cleaned key, or the name of a canonical "
            f"column of {table} whose values map cleans the key; {raw!r} is neither."
        )
    return str(raw)


def _per_column(raw: dict, key: str, what: str, parse: Any, where: str, origin: str) -> dict:
    """``tables.<table>.<key>``: canonical column -> ``parse``d setting."""
    found = raw.get(key) or {}
    if not isinstance(found, dict):
        raise MappingError(f"{origin}: {where}.{key} must map a column to {what}.")
    return {str(col): parse(v, f"{where}.{key}.{col}", origin) for col, v in found.items()}


def _parse_table(table: str, raw: Any, origin: str) -> TableMapping:
    where = f"tables.{table}"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MappingError(f"{origin}: {where} must be a mapping.")
    _check_keys(raw, _TABLE_KEYS, where, origin)
    names = {c.name for c in TABLES[table]}
    columns = _as_str_dict(raw.get("columns"), f"{where}.columns", origin)
    bad = sorted(set(columns) - names)
    if bad:
        raise MappingError(
            f"{origin}: {where}.columns has {', '.join(map(repr, bad))}, which are not canonical "
            f"columns of {table}. Write canonical_name: Source Column; canonical names are "
            f"{', '.join(sorted(names))}."
        )
    stages = {
        norm_label(k): str(v).strip().lower()
        for k, v in _as_str_dict(raw.get("stages"), f"{where}.stages", origin).items()
    }
    wrong = sorted({v for v in stages.values() if v not in STATUSES})
    if wrong:
        raise MappingError(
            f"{origin}: {where}.stages maps to {', '.join(map(repr, wrong))}; "
            f"each stage must map to one of {', '.join(STATUSES)}."
        )
    values = _per_column(raw, "values", "a value map", _as_str_dict, where, origin)
    date_formats = _per_column(raw, "date_formats", "a format", _as_tuple, where, origin)
    lookups_raw = raw.get("lookups") or []
    if not isinstance(lookups_raw, list):
        raise MappingError(f"{origin}: {where}.lookups must be a list.")
    lookups = tuple(_parse_lookup(lk, table, i, origin) for i, lk in enumerate(lookups_raw))
    source = _as_tuple(raw.get("source"), f"{where}.source", origin) or (table,)
    return TableMapping(table, source, columns, stages, values, date_formats, lookups)


def norm_label(text: str) -> str:
    """Normalise a stage or column label for matching: trimmed, lower case, single spaces."""
    return " ".join(str(text).split()).lower()


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(
            f"Mapping file {path} does not exist. Pass a preset ({', '.join(PRESETS)}) "
            f"or the path of a mapping YAML."
        ) from None
    except yaml.YAMLError as exc:
        raise MappingError(f"Mapping file {path} is not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(f"Mapping file {path} is not UTF-8 text; save it as UTF-8.") from None
    if not isinstance(doc, dict):
        raise MappingError(f"Mapping file {path} must hold a mapping with a 'tables' key.")
    return doc


def _raw_document(spec: str | Path | dict, seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    if isinstance(spec, dict):
        doc, origin = copy.deepcopy(spec), "mapping dict"
    elif isinstance(spec, str) and spec in PRESETS:
        doc, origin = _read_yaml(_PRESET_DIR / f"{spec}.yaml"), f"preset {spec!r}"
    elif isinstance(spec, (str, Path)) and (
        str(spec).endswith((".yaml", ".yml")) or Path(spec).exists()
    ):
        doc, origin = _read_yaml(Path(spec)), str(spec)
    else:
        raise MappingError(
            f"Unknown mapping {spec!r}. Use a preset ({', '.join(PRESETS)}) or the path of a "
            f"mapping YAML file (see docs/mappings.md)."
        )
    parent = doc.pop("extends", None)
    if parent is not None:
        if str(parent) in seen:
            raise MappingError(f"{origin}: 'extends' loops back to {parent!r}.")
        base, _ = _raw_document(str(parent), (*seen, str(parent)))
        base.pop("name", None)
        doc = _merge(base, doc)
    return doc, origin


def resolve_mapping(spec: str | Path | dict | Mapping = "canonical") -> Mapping:
    """Turn a preset name, a YAML path, a dict or a Mapping into a validated Mapping.

    Parameters
    ----------
    spec
        ``"canonical"``, ``"salesforce"``, ``"hubspot"``, a path to a mapping YAML file, a dict
        in the same shape, or an existing :class:`Mapping`.

    Examples
    --------
    >>> m = resolve_mapping("salesforce")
    >>> m.tables["opportunities"].columns["amount"]
    'Amount'
    """
    if isinstance(spec, Mapping):
        return spec
    doc, origin = _raw_document(spec)
    _check_keys(doc, _TOP_KEYS, "the top level", origin)
    tables_raw = doc.get("tables") or {}
    if not isinstance(tables_raw, dict):
        raise MappingError(f"{origin}: 'tables' must map canonical table names to settings.")
    unknown = sorted(set(tables_raw) - set(TABLES))
    if unknown:
        raise MappingError(
            f"{origin}: unknown table(s) {', '.join(map(repr, unknown))} under 'tables'; "
            f"canonical tables are {', '.join(TABLES)}."
        )
    tables = {name: _parse_table(name, tables_raw.get(name), origin) for name in TABLES}
    base_currency = doc.get("base_currency")
    return Mapping(
        name=str(doc.get("name") or (spec if isinstance(spec, str) else "custom")),
        origin=origin,
        tables=tables,
        base_currency=str(base_currency).upper() if base_currency else None,
        date_formats=_as_tuple(doc.get("date_formats"), "date_formats", origin),
        decimal_comma=bool(doc.get("decimal_comma", False)),
        description=str(doc.get("description") or ""),
    )
