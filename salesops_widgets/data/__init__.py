"""Data layer: sources, mappings, validation and the sample generator."""

from ._load import SalesData, cached, load, validate
from ._mapping import PRESETS, Mapping, norm_label, resolve_mapping
from ._prepared import Prepared, prepare, source_files, store_when_prepared
from ._quality import QualityReport, TableReport
from ._sample import generate_sample, write_sample

__all__ = [
    "SalesData",
    "load",
    "validate",
    "prepare",
    "Prepared",
    "source_files",
    "store_when_prepared",
    "cached",
    "Mapping",
    "norm_label",
    "resolve_mapping",
    "PRESETS",
    "QualityReport",
    "TableReport",
    "generate_sample",
    "write_sample",
]
