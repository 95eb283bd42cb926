"""Predictions paired with their references by id (standard library only: the COMET rule
imports it in the COMET environment)."""

from __future__ import annotations

from typing import Any

from repro.io import DataError


def _few(ids: list[Any], k: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f", ... ({len(ids) - k} more)" if len(ids) > k else "")


def align(predictions: list[dict[str, Any]], references: list[dict[str, Any]]) -> list[dict]:
    """Predictions reordered to follow the references by "id"; DataError on any mismatch."""
    by_id: dict[Any, dict[str, Any]] = {}
    for i, pred in enumerate(predictions):
        if "id" not in pred:
            raise DataError(f"prediction #{i + 1} has no id")
        if pred["id"] in by_id:
            raise DataError(f"duplicate prediction id {pred['id']!r}")
        by_id[pred["id"]] = pred
    ref_ids = []
    for i, ref in enumerate(references):
        if "id" not in ref:
            raise DataError(f"reference #{i + 1} has no id")
        ref_ids.append(ref["id"])
    missing = [i for i in ref_ids if i not in by_id]
    extra = sorted(set(by_id) - set(ref_ids), key=str)
    if missing or extra or len(predictions) != len(references):
        parts = [f"{len(predictions)} predictions for {len(references)} references"]
        if missing:
            parts.append(f"{len(missing)} missing ({_few(missing)})")
        if extra:
            parts.append(f"{len(extra)} extra ({_few(extra)})")
        raise DataError("; ".join(parts))
    return [by_id[i] for i in ref_ids]
