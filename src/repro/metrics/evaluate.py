"""Score a task's predictions against its normalized references."""

from __future__ import annotations

import os
import re
import string
from collections import Counter
from typing import Any

from repro.io import DataError, read_jsonl
from repro.metrics.classification import accuracy_macro_f1, parse_choice
from repro.metrics.comet import comet_score
from repro.metrics.mt import bleu_chrf
from repro.metrics.summarization import bertscore, rouge
from repro.metrics.warmup_analysis import warmup_analysis

TASK_METRICS: dict[str, list[str]] = {
    "translation": ["bleu", "chrf", "comet"],
    "summarization": ["rouge1", "rouge2", "rougeL", "bertscore"],
    "multiple_choice": ["accuracy", "macro_f1"],
    "knowledge": ["exact_match", "f1"],
}


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


def _hypothesis(pred: dict[str, Any]) -> str | None:
    hyp = pred.get("hypothesis")
    if hyp is not None and not isinstance(hyp, str):
        raise DataError(f"prediction {pred.get('id')!r}: hypothesis is not a string")
    return hyp


_PUNCT = frozenset(string.punctuation)


def _normalize_answer(s: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, squeeze whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _token_f1(pred: str, gold: str) -> float:
    p, g = _normalize_answer(pred).split(), _normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match_f1(hyps: list[str], answers: list[list[str]]) -> dict[str, dict[str, Any]]:
    """SQuAD-style exact match and token F1 against the best-matching answer, x100."""
    if len(hyps) != len(answers):
        raise DataError(f"{len(hyps)} hypotheses for {len(answers)} answer lists")
    if not hyps:
        return {"exact_match": {"skipped": "no examples"}, "f1": {"skipped": "no examples"}}
    em = sum(
        max(_normalize_answer(h) == _normalize_answer(a) for a in golds)
        for h, golds in zip(hyps, answers, strict=True)
    )
    f1 = sum(max(_token_f1(h, a) for a in golds) for h, golds in zip(hyps, answers, strict=True))
    sig = "squad|norm=lower,punct,articles,ws|agg=max-over-answers"
    return {
        "exact_match": {"value": 100.0 * em / len(hyps), "signature": sig},
        "f1": {"value": 100.0 * f1 / len(hyps), "signature": sig},
    }


def _answers(ref: dict[str, Any]) -> list[str]:
    answers = ref.get("answers") or ([ref["target"]] if ref.get("target") else [])
    if not answers or not all(isinstance(a, str) for a in answers):
        raise DataError(f"reference {ref.get('id')!r}: no answers (list of strings)")
    return answers


def _targets(references: list[dict[str, Any]]) -> list[str]:
    for ref in references:
        if not isinstance(ref.get("target"), str):
            raise DataError(f"reference {ref.get('id')!r}: target is missing or not a string")
    return [r["target"] for r in references]


def evaluate_task(
    task: str,
    predictions: list[dict[str, Any]],
    references: list[dict[str, Any]],
    cfg: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Metrics of `task`, {name: {"value", "signature", ...} | {"skipped"}}, in TASK_METRICS order.

    cfg: target_lang, metrics (subset to compute), bertscore {...}, comet {...}. A missing
    hypothesis (None) scores as empty output, or as an unparsable choice.
    """
    if task not in TASK_METRICS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_METRICS)}")
    wanted = cfg.get("metrics") or TASK_METRICS[task]
    unknown = [m for m in wanted if m not in TASK_METRICS[task]]
    if unknown:
        raise ValueError(f"metrics {unknown} not available for {task}: {TASK_METRICS[task]}")
    preds = align(predictions, references)
    raw = [_hypothesis(p) for p in preds]
    hyps = [h or "" for h in raw]
    out: dict[str, dict[str, Any]] = {}

    if task == "translation":
        targets = _targets(references)
        if {"bleu", "chrf"} & set(wanted):
            out.update(bleu_chrf(hyps, targets, cfg.get("target_lang")))
        if "comet" in wanted:
            sources = [r.get("source", "") for r in references]
            out.update(comet_score(sources, hyps, targets, cfg.get("comet") or {}))
    elif task == "summarization":
        targets = _targets(references)
        if {"rouge1", "rouge2", "rougeL"} & set(wanted):
            out.update(rouge(hyps, targets))
        if "bertscore" in wanted:
            out.update(bertscore(hyps, targets, cfg.get("bertscore") or {}))
    elif task == "multiple_choice":
        try:
            num = [len(r["choices"]) for r in references]
            gold = [int(r["label"]) for r in references]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"multiple_choice reference without valid choices/label: {e}") from e
        pred_labels = [parse_choice(h, n) for h, n in zip(raw, num, strict=True)]
        out.update(accuracy_macro_f1(pred_labels, gold, max(num, default=0)))
    else:  # knowledge
        out.update(exact_match_f1(hyps, [_answers(r) for r in references]))
    return {m: out[m] for m in TASK_METRICS[task] if m in wanted}


def evaluate_files(
    task: str,
    predictions_path: str | os.PathLike[str],
    references_path: str | os.PathLike[str],
    cfg: dict[str, Any],
) -> dict[str, Any]:
    """Evaluate jsonl predictions against jsonl references: {"task", "n", "metrics"}."""
    predictions = read_jsonl(predictions_path)
    references = read_jsonl(references_path)
    if len(predictions) != len(references):
        raise DataError(
            f"{predictions_path}: {len(predictions)} predictions but {len(references)} "
            f"references in {references_path}"
        )
    try:
        align(predictions, references)
    except DataError as e:
        raise DataError(f"{predictions_path}: {e}") from e
    result = {
        "task": task,
        "n": len(references),
        "metrics": evaluate_task(task, predictions, references, cfg),
    }
    if any("warmup" in p for p in predictions):
        by_id = {p["id"]: p for p in predictions}
        ordered = [by_id[r["id"]] for r in references]
        result["analysis"] = warmup_analysis(ordered, references, cfg.get("target_lang"))
    return result
