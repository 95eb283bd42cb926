"""Filter fetched splits: drop malformed, empty, too long and duplicate records, then cap sizes.

Config keys (all optional): max_source_chars, max_target_chars, max_source_words,
max_target_words (None = no limit; words are whitespace-separated), dedup (default true: also
drop a repeated (source, target) pair; a repeated id is always dropped), caps ({split: max
records kept}) and expect_counts ({split: records the split must hold after filtering}).

The content filters (empty, too long, repeated pair) clean the training data only: validation
and test splits stay as published (the paper's test sets, and its dev sets for a comparable
validation loss); only what cannot be read or scored is dropped there (a malformed record, a
repeated id). `expect_counts` then checks a split against its published size: a mismatch is an
error naming the dataset, split, expected and found counts.

Each dropped record counts under the first failing reason, in the order of REASONS. Duplicates
are judged against earlier records that passed the checks before it, whether or not the cap
then dropped them, so caps never change the duplicate count.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repro.data.schema import SPLITS, check_record
from repro.io import DataError, atomic_path, read_json, read_jsonl, write_json, write_jsonl
from repro.pools import attach_candidates, check_record_candidates, read_candidates

REASONS = ("malformed", "empty", "too_long", "duplicate", "cap")
CFG_KEYS = {"max_source_chars", "max_target_chars", "max_source_words", "max_target_words",
            "dedup", "caps", "expect_counts"}
CLEANED_SPLITS = ("train",)  # the splits the content filters (empty, too long, pair) apply to
# The workflow's two filter jobs of a dataset (rules/data.smk): training splits, test split.
TRAINING_SPLITS = ("train", "validation")
TEST_SPLITS = ("test",)


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
    clean = split in CLEANED_SPLITS
    dedup = cfg.get("dedup", True) and clean
    cap = (cfg.get("caps") or {}).get(split)
    dropped = dict.fromkeys(REASONS, 0)
    kept: list[dict[str, Any]] = []
    ids: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for rec in records:
        if check_record(rec, task) is not None:
            reason = "malformed"
        elif clean and (not rec["source"].strip() or not rec["target"].strip()):
            reason = "empty"
        elif clean and _too_long(rec, cfg):
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


def check_counts(stats: dict[str, Any], expected: dict[str, int], name: str) -> None:
    """DataError unless each split of `expected` kept exactly that many records (splits not
    in `stats` are another job's)."""
    for split, n in (expected or {}).items():
        if split not in SPLITS:
            raise DataError(f"datasets.{name}.filter.expect_counts: unknown split '{split}' "
                            f"(splits: {', '.join(SPLITS)})")
        if split not in stats:
            continue
        st = stats[split]
        if st["kept"] != n:
            why = ", ".join(f"{r}: {k}" for r, k in st["dropped"].items() if k) or "none"
            raise DataError(
                f"dataset '{name}', split '{split}': expected {n} records "
                f"(datasets.{name}.filter.expect_counts.{split}), found {st['kept']} "
                f"({st['input']} read, {st['malformed_lines']} unreadable lines; dropped: {why})")


def filter_dataset(
    raw_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], task: str,
    cfg: dict[str, Any], test_only: bool = False, name: str | None = None,
    pool_dir: str | os.PathLike[str] | None = None, splits: Sequence[str] = SPLITS,
    passages_name: str = "passages.jsonl", stats_name: str = "filter_stats.json",
) -> dict[str, Any]:
    """Filter raw_dir/{split}.jsonl into out_dir, copy passages.jsonl, write filter_stats.json.

    Returns {split: {"input", "kept", "dropped", "malformed_lines"}} (malformed_lines from
    raw_dir/fetch_stats.json, 0 if absent; also its "source" and "convert" counts if any).
    Nothing is written if a split ends up empty (with `test_only`, a dataset that trains on
    another one: if the test split does) or a split's count differs from `expect_counts`
    (`name`: the dataset's name, for the message). With `pool_dir` (repro.pools:
    candidates.jsonl, passages.jsonl), each kept test record gets its pool as `candidates` and
    the pooled passages join passages.jsonl. Records' candidates are checked (non-empty, known
    passages) either way.

    `splits` (with the names of the passages and stats files) filters some splits only: the
    workflow filters the training splits and the test split in two jobs (TRAINING_SPLITS,
    TEST_SPLITS), so that a test-only setting (caps.test, a pool) retrains nothing.
    """
    raw, out = Path(raw_dir), Path(out_dir)
    stats_file = raw / "fetch_stats.json"
    fetch_stats = read_json(stats_file) if stats_file.is_file() else {}
    kept: dict[str, list[dict[str, Any]]] = {}
    stats: dict[str, Any] = {}
    for split in splits:
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
    check_counts(stats, cfg.get("expect_counts") or {}, name or str(raw))
    passages = raw / "passages.jsonl"
    testing = "test" in kept
    pooled = _pooled(raw, Path(pool_dir), kept) if pool_dir is not None and testing else None
    if pooled is None and testing and any(r.get("candidates") is not None
                                          for r in kept["test"]):
        ids = {p.get("id") for p in read_jsonl(passages)} if passages.is_file() else set()
        check_record_candidates(kept["test"], ids, str(raw / "test.jsonl"))
    for split in splits:
        write_jsonl(out / f"{split}.jsonl", kept[split])
    if pooled is not None:
        own = read_jsonl(passages) if passages.is_file() else []
        known = {p.get("id") for p in own}
        write_jsonl(out / passages_name, own + [p for p in pooled if p["id"] not in known])
    elif passages.is_file():
        with atomic_path(out / passages_name) as tmp:
            shutil.copyfile(passages, tmp)
    else:
        write_jsonl(out / passages_name, [])
    write_json(out / stats_name, stats)
    return stats


def _pooled(raw: Path, pool_dir: Path, kept: dict[str, list[dict[str, Any]]]
            ) -> list[dict[str, Any]]:
    """Give the kept test records their pools (kept["test"] is replaced); the pooled passages
    the kept records use."""
    pool_passages = read_jsonl(pool_dir / "passages.jsonl")
    by_id = {p["id"]: p for p in pool_passages}
    pools = read_candidates(pool_dir / "candidates.jsonl", set(by_id))
    kept["test"] = attach_candidates(kept["test"], read_jsonl(raw / "test.jsonl"), pools,
                                     pool_dir / "candidates.jsonl", raw / "test.jsonl")
    used = {c for r in kept["test"] for c in r["candidates"]}
    return [p for p in pool_passages if p["id"] in used]
