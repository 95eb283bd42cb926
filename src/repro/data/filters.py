"""Filter fetched splits: drop malformed, empty, too long and duplicate records, then cap sizes.

Config keys (all optional): max_source_chars, max_target_chars, max_source_words,
max_target_words (None = no limit; words are whitespace-separated), dedup (default true: also
drop a repeated (source, target) pair; a repeated id is always dropped) and caps
({split: max records kept}). Each dropped record counts under the first failing reason, in the
order of REASONS. Duplicates are judged against earlier records that passed the checks before
it, whether or not the cap then dropped them, so caps never change the duplicate count.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from repro.data.schema import SPLITS, check_record
from repro.io import DataError, atomic_path, read_json, read_jsonl, write_json, write_jsonl

REASONS = ("malformed", "empty", "too_long", "duplicate", "cap")
CFG_KEYS = {"max_source_chars", "max_target_chars", "max_source_words", "max_target_words",
            "dedup", "caps"}


def _too_long(rec: dict[str, Any], cfg: dict[str, Any]) -> bool:
    for name in ("source", "target"):
        text = rec[name]
        max_chars, max_words = cfg.get(f"max_{name}_chars"), cfg.get(f"max_{name}_words")
        if max_chars is not None and len(text) > max_chars:
            return True
        if max_words is not None and len(text.split()) > max_words:
            return True
    return False


def filter_split(
    records: list[dict[str, Any]], task: str, cfg: dict[str, Any], split: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Kept records (in input order) and {"input", "kept", "dropped": {reason: n}}."""
    unknown = sorted(set(cfg) - CFG_KEYS)
    if unknown:
        raise ValueError(f"unknown filter settings {unknown}; known: {sorted(CFG_KEYS)}")
    dedup = cfg.get("dedup", True)
    cap = (cfg.get("caps") or {}).get(split)
    dropped = dict.fromkeys(REASONS, 0)
    kept: list[dict[str, Any]] = []
    ids: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for rec in records:
        if check_record(rec, task) is not None:
            reason = "malformed"
        elif not rec["source"].strip() or not rec["target"].strip():
            reason = "empty"
        elif _too_long(rec, cfg):
            reason = "too_long"
        elif rec["id"] in ids or (dedup and (rec["source"], rec["target"]) in pairs):
            reason = "duplicate"
        else:
            ids.add(rec["id"])
            pairs.add((rec["source"], rec["target"]))
            if cap is not None and len(kept) >= cap:
                reason = "cap"
            else:
                kept.append(rec)
                continue
        dropped[reason] += 1
    return kept, {"input": len(records), "kept": len(kept), "dropped": dropped}


def filter_dataset(
    raw_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], task: str,
    cfg: dict[str, Any], test_only: bool = False,
) -> dict[str, Any]:
    """Filter raw_dir/{split}.jsonl into out_dir, copy passages.jsonl, write filter_stats.json.

    Returns {split: {"input", "kept", "dropped", "malformed_lines"}} (malformed_lines from
    raw_dir/fetch_stats.json, 0 if absent; also its "source" and "convert" counts if any).
    Nothing is written if a split ends up empty (with `test_only`, a dataset that trains on
    another one: if the test split does).
    """
    raw, out = Path(raw_dir), Path(out_dir)
    stats_file = raw / "fetch_stats.json"
    fetch_stats = read_json(stats_file) if stats_file.is_file() else {}
    kept: dict[str, list[dict[str, Any]]] = {}
    stats: dict[str, Any] = {}
    for split in SPLITS:
        path = raw / f"{split}.jsonl"
        if not path.is_file():
            raise DataError(f"{path}: missing (split '{split}')")
        kept[split], st = filter_split(read_jsonl(path), task, cfg, split)
        st["malformed_lines"] = int(fetch_stats.get(split, {}).get("malformed_lines", 0))
        for key in ("source", "convert"):  # which source was read, a converter's counts
            if key in fetch_stats.get(split, {}):
                st[key] = fetch_stats[split][key]
        if not kept[split] and not (test_only and split != "test"):
            why = ", ".join(f"{r}: {n}" for r, n in st["dropped"].items() if n) or "no records"
            raise DataError(f"{path}: split '{split}' is empty after filtering "
                            f"({st['input']} records in; dropped {why})")
        stats[split] = st
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", kept[split])
    passages = raw / "passages.jsonl"
    if passages.is_file():
        with atomic_path(out / "passages.jsonl") as tmp:
            shutil.copyfile(passages, tmp)
    else:
        write_jsonl(out / "passages.jsonl", [])
    write_json(out / "filter_stats.json", stats)
    return stats
