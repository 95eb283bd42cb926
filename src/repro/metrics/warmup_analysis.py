"""Warmup analysis (Warmup Generations, sec. "analysis"): how warmups relate to the reference.

Per test example with a generated warmup c and the reference y, words W(.) are lower-cased word
tokens (characters for Chinese targets):
- overlap: |{w in c : w in W(y)}| / |c| - the share of warmup words that occur in the reference
  (the paper reports over 40% on average); empty warmups are left out and counted apart;
- exact phrase: the warmup's words form a contiguous phrase of the reference;
- no-separator rate: share of test examples whose warmup ended without the separator.
"""

from __future__ import annotations

import re
from typing import Any

WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str, lang: str | None = None) -> list[str]:
    if lang and lang.lower().startswith("zh"):
        return [ch for ch in text if ch.strip() and WORD.match(ch)]
    return WORD.findall(text.lower())


def overlap(warmup: list[str], reference: list[str]) -> float:
    ref = set(reference)
    return sum(w in ref for w in warmup) / len(warmup)


def is_phrase(warmup: list[str], reference: list[str]) -> bool:
    k = len(warmup)
    return any(reference[i : i + k] == warmup for i in range(len(reference) - k + 1))


def per_example(warmups: list[str], references: list[str], lang: str | None = None) -> list[dict]:
    """One row per example: overlap (None for an empty warmup) and exact_phrase."""
    rows = []
    for c, y in zip(warmups, references, strict=True):
        wc, wy = words(c, lang), words(y, lang)
        rows.append({"empty": not wc, "overlap": overlap(wc, wy) if wc else None,
                     "exact_phrase": bool(wc) and is_phrase(wc, wy)})
    return rows


def warmup_analysis(predictions: list[dict], references: list[dict],
                    lang: str | None = None) -> dict[str, dict[str, Any]]:
    """Aggregates over a run's test predictions (aligned with references), values in percent."""
    rows = per_example([p.get("warmup") or "" for p in predictions],
                       [r["target"] for r in references], lang)
    nonempty = [r for r in rows if not r["empty"]]
    n = len(rows)
    out: dict[str, dict[str, Any]] = {
        "warmup_empty": {"value": 100 * (n - len(nonempty)) / n if n else 0.0, "n": n},
        "warmup_no_separator": {
            "value": 100 * sum(not p.get("separator_found", False) for p in predictions) / n
            if n else 0.0, "n": n},
    }
    if nonempty:
        out["warmup_word_overlap"] = {
            "value": 100 * sum(r["overlap"] for r in nonempty) / len(nonempty), "n": len(nonempty)}
        out["warmup_exact_phrase"] = {
            "value": 100 * sum(r["exact_phrase"] for r in nonempty) / len(nonempty),
            "n": len(nonempty)}
    else:
        reason = "every warmup is empty"
        out["warmup_word_overlap"] = {"skipped": reason}
        out["warmup_exact_phrase"] = {"skipped": reason}
    return out
