"""Accuracy and macro-F1 for multiple choice, where a prediction may be unparsable (None)."""

from __future__ import annotations

import re
from typing import Any

from repro.io import DataError

_LETTER = re.compile(r"\(?([A-H])(?:[).:,\s]|$)")


def _letter_to_index(s: str | None) -> int | None:
    """Map an answer letter to its 0-based index: "B", "B.", "(B)", "B) text" -> 1; else None."""
    if not isinstance(s, str):
        return None
    m = _LETTER.match(s.strip())
    return ord(m.group(1)) - ord("A") if m else None


try:  # the shared parser, once repro.data.schema provides it
    from repro.data.schema import letter_to_index as _shared_letter_to_index
except ImportError:
    _shared_letter_to_index = _letter_to_index


def parse_choice(hypothesis: str | None, num_choices: int) -> int | None:
    """Index of the chosen answer, or None if unparsable or beyond the available choices."""
    try:
        idx = _shared_letter_to_index(hypothesis) if hypothesis is not None else None
    except (ValueError, TypeError, KeyError):
        idx = None
    return idx if isinstance(idx, int) and 0 <= idx < num_choices else None


def accuracy_macro_f1(
    pred_labels: list[int | None], gold_labels: list[int], num_classes: int
) -> dict[str, dict[str, Any]]:
    """Accuracy and macro-F1, x100.

    A None prediction is wrong: it is a false negative for its gold class and a true or false
    positive for no class. Macro-F1 averages per-class F1 = 2TP / (2TP + FP + FN) over the
    classes present in the gold labels or the (parsed) predictions, as sklearn's
    f1_score(average="macro") does with labels=that set (an absent class would score 0 and
    drag the mean down without telling anything).
    """
    if len(pred_labels) != len(gold_labels):
        raise DataError(f"{len(pred_labels)} predictions for {len(gold_labels)} gold labels")
    for kind, labels in (("gold", gold_labels), ("predicted", pred_labels)):
        bad = [x for x in labels if x is not None and not 0 <= x < num_classes]
        if bad:
            raise DataError(f"{kind} label {bad[0]} outside 0..{num_classes - 1}")
    if not gold_labels:
        return {"accuracy": {"skipped": "no examples"}, "macro_f1": {"skipped": "no examples"}}
    n = len(gold_labels)
    unparsed = sum(p is None for p in pred_labels)
    correct = sum(p == g for p, g in zip(pred_labels, gold_labels, strict=True))
    classes = sorted(set(gold_labels) | {p for p in pred_labels if p is not None})
    f1s = []
    for c in classes:
        tp = sum(p == c and g == c for p, g in zip(pred_labels, gold_labels, strict=True))
        fp = sum(p == c and g != c for p, g in zip(pred_labels, gold_labels, strict=True))
        fn = sum(g == c and p != c for p, g in zip(pred_labels, gold_labels, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    extra = {"n": n, "unparsed": unparsed}
    return {
        "accuracy": {"value": 100.0 * correct / n, "signature": "accuracy|none=wrong", **extra},
        "macro_f1": {
            "value": 100.0 * sum(f1s) / len(f1s),
            "signature": "macro-f1|classes=gold+pred|none=fn",
            "classes": len(classes),
            **extra,
        },
    }
