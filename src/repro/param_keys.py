"""Params whose change a dry run names by key (rules/common.smk, `keyed`).

Snakemake compares a job's params with those recorded for its outputs and, on a change, prints
the old and the new value of each changed param in the job's `reason:` line. A job's config
slice is one canonical JSON param (repro.config): printed whole, twice, it is several KB per job
and hides what changed. So the slice reaches the script as a derived param (Snakemake does not
track it) and is tracked as SLOTS params instead, each holding the `key=value` leaves of the
slice whose key hashes to that slot. An edit changes the slot of each edited key only, and the
reason line reads, say, `only_old: 'training.learning_rate=0.0001'` and
`only_new: 'training.learning_rate=0.0003'` (with the few other leaves of those slots).

The slots hold every leaf of the slice, so a job reruns on exactly the edits it did before.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SLOTS = 16  # 40 leaves in the largest slice (paper_cosup training): two or three per slot
PREFIX = "keys_"  # names of the slot params; repro.workflow.start drops them
SEP = "; "


def leaves(value: Any, prefix: str = "") -> list[str]:
    """`dotted.key=json` for each leaf of a JSON object (lists and empty objects are leaves)."""
    if isinstance(value, dict) and value:
        out = []
        for key in sorted(value):
            out += leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    return [f"{prefix}={json.dumps(value, sort_keys=True, ensure_ascii=False)}"]


def slot_of(leaf: str, slots: int = SLOTS) -> int:
    """A leaf's slot: a stable hash of its key (the text before the first `=`)."""
    key = leaf.split("=", 1)[0]
    return int(hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()[:8], 16) % slots


def slots(slice_json: str, slots: int = SLOTS) -> list[str]:
    """The `slots` strings tracked for one canonical JSON slice."""
    out: list[list[str]] = [[] for _ in range(slots)]
    for leaf in leaves(json.loads(slice_json)):
        out[slot_of(leaf, slots)].append(leaf)
    return [SEP.join(s) for s in out]


def slot_names(name: str, slots: int = SLOTS) -> list[str]:
    """The param names of a slice's slots."""
    return [f"{PREFIX}{name}_{i}" for i in range(slots)]


def is_slot(param: str) -> bool:
    return param.startswith(PREFIX)
