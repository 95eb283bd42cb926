"""The warmup analysis of the report: the rates evaluation stores per warmup run (as a table),
and the per-example overlap of warmups with the reference (for the histogram).

The paper reports that over 40% of warmup words occur in the reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from repro.io import align
from repro.metrics.warmup_analysis import per_example
from repro.runs import FIELDS as RUN_KEYS
from repro.runs import Run

ANALYSIS_COLUMNS = (("warmup_word_overlap", "Warmup words in reference (%)"),
                    ("warmup_exact_phrase", "Warmups that are a phrase of the reference (%)"),
                    ("warmup_empty", "Empty warmups (%)"),
                    ("warmup_no_separator", "Separator appended, not generated (%)"))


def warmup_analysis_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per warmup run: its test examples and the analysis rates of metrics.json
    (the paper reports that over 40% of warmup words occur in the reference)."""
    rows = []
    for r in results:
        analysis = r.get("analysis") or {}
        if not any(key in analysis for key, _ in ANALYSIS_COLUMNS):
            continue
        row = {k: r[k] for k in RUN_KEYS}
        row["examples"] = r.get("n")
        for key, label in ANALYSIS_COLUMNS:
            entry = analysis.get(key) or {}
            row[label] = entry.get("value") if isinstance(entry, dict) else entry
        rows.append(row)
    columns = [*RUN_KEYS, "examples", *(label for _, label in ANALYSIS_COLUMNS)]
    return pd.DataFrame(rows, columns=columns)


SEPARATOR_NOTE = (
    "Decoding appends the separator after every warmup by design (repro.methods.warmup: the"
    " warmup ends at the separator, at the end of sequence or after `warmup_len` tokens, then"
    " the separator is added and the target decoded), so every target follows `warmup SEP`."
    " \"Separator appended, not generated\" counts the warmups that ended before the model"
    " generated the separator itself: a high rate is expected with short warmups, not a failure."
)


def warmup_analysis_markdown(frame: pd.DataFrame) -> str:
    """The warmup analysis as a Markdown table (rates with one decimal), with a note on what
    the no-separator rate means."""
    body = frame.copy()
    for _, label in ANALYSIS_COLUMNS:
        body[label] = [("-" if v is None or v != v else f"{v:.1f}") for v in body[label]]
    head = "# Warmup analysis\n\nPer warmup run, over its test examples (decoding).\n\n"
    if not len(body):
        return head + "No warmup runs.\n"
    return head + body.to_markdown(index=False, disable_numparse=True) + f"\n\n{SEPARATOR_NOTE}\n"

def warmup_overlaps(
    results: Sequence[dict[str, Any]],
    predictions: Mapping[str, Sequence[dict[str, Any]]],
    references: Mapping[tuple[str, str], Sequence[dict[str, Any]]],
    target_langs: Mapping[str, str | None] | None = None,
) -> dict[tuple[str, str], list[float]]:
    """Per-example overlap (%) of non-empty warmups with the reference, pooled over seeds:
    {(task, "dataset · model · method[ · variant]"): values}."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in results:
        preds = predictions.get(Run.from_record(r).id)
        refs = references.get((r["task"], r["dataset"]))
        if not preds or refs is None or not any("warmup" in p for p in preds):
            continue
        aligned = align(list(preds), list(refs))
        rows = per_example([p.get("warmup") or "" for p in aligned], [x["target"] for x in refs],
                           (target_langs or {}).get(r["dataset"]))
        label = f"{r['dataset']} · {r['model']} · {r['method']}" + (
            "" if r["variant"] == "default" else f" · {r['variant']}")
        out.setdefault((r["task"], label), []).extend(
            100.0 * x["overlap"] for x in rows if x["overlap"] is not None)
    return out
