"""Data layer: normalized record schema, dataset sources, synthetic generators and filters."""

from repro.data.filters import REASONS, filter_dataset, filter_split
from repro.data.schema import (
    SPLITS,
    TASKS,
    FetchResult,
    check_passage,
    check_record,
    letter,
    letter_to_index,
    mc_source,
)
from repro.data.sources import fetch, write_fetch
from repro.data.synthetic import generate

__all__ = [
    "REASONS", "SPLITS", "TASKS", "FetchResult", "check_passage", "check_record", "fetch",
    "filter_dataset", "filter_split", "generate", "letter", "letter_to_index", "mc_source",
    "write_fetch",
]
