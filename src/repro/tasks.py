"""The tasks: their names, the metrics each is scored with, and its main metric (the one copy).

Light on purpose (no imports): Snakemake reads it while it parses the workflow, evaluation picks
the metrics to compute from it, and the report orders columns and names panels with it.
"""

from __future__ import annotations

TASKS: tuple[str, ...] = ("translation", "summarization", "multiple_choice", "knowledge")

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "translation": ("bleu", "chrf", "comet"),
    "summarization": ("rouge1", "rouge2", "rougeL", "bertscore"),
    "multiple_choice": ("accuracy", "macro_f1"),
    # recall_at_5: KILT's recall@k at repro.metrics.kilt.RECALL_K
    "knowledge": ("correctness", "exact_match", "f1", "accuracy", "rougeL", "answer_in_output",
                  "str_em", "str_hit", "claims_nli", "retrieval", "support_exist",
                  "r_precision", "recall_at_5", "answer_in_retrieved",
                  "kilt_exact_match", "kilt_f1", "kilt_accuracy", "kilt_rougeL", "grounding"),
}
"""Every metric of each task, in the order metrics.json and the tables list them."""

TASK_METRIC_SECTIONS: dict[str, tuple[str, ...]] = {"knowledge": ("true_nli",)}
"""Sections of `metrics` that only a task's metrics read, besides the metric names above."""

MAIN_METRIC: dict[str, str] = {
    "translation": "bleu",
    "summarization": "rougeL",
    "multiple_choice": "accuracy",
    "knowledge": "correctness",
}
"""The metric of each task's main-metric plot and ablation plots."""

TASK_NAMES: dict[str, str] = {
    "translation": "Translation",
    "summarization": "Summarization",
    "multiple_choice": "Multiple choice",
    "knowledge": "Knowledge",
}
METRIC_NAMES: dict[str, str] = {
    "bleu": "BLEU",
    "chrf": "chrF++",
    "comet": "COMET",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bertscore": "BERTScore",
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "exact_match": "EM",
    "f1": "F1",
    "correctness": "Correctness",
    "retrieval": "Retrieval",
    "grounding": "Grounding",
    "answer_in_output": "Answer in output",
    "answer_in_retrieved": "Answer in retrieved",
    "r_precision": "R-precision",
    "recall_at_5": "Recall@5",
    "kilt_exact_match": "KILT-EM",
    "kilt_f1": "KILT-F1",
    "kilt_accuracy": "KILT-AC",
    "kilt_rougeL": "KILT-RL",
    "str_em": "STR-EM",
    "str_hit": "STR-Hit",
    "claims_nli": "Claim recall",
    "support_exist": "Gold page retrieved",
    # what a knowledge run's grounding was computed as (its `metric` field, metrics.json)
    "grounding_spans": "Revised AutoAIS (spans)",
    "grounding_sentences": "NLI citation recall (sentences)",
}


def task_name(task: str) -> str:
    """Display name of a task key."""
    return TASK_NAMES.get(task, task.replace("_", " ").capitalize())


def metric_name(metric: str) -> str:
    """Display name of a metric key (the key itself when unknown)."""
    return METRIC_NAMES.get(metric, metric)


def other_tasks_metrics(task: str) -> set[str]:
    """Metric keys that only other tasks compute (their config sections do not concern `task`)."""
    sections = {t: (*TASK_METRICS.get(t, ()), *TASK_METRIC_SECTIONS.get(t, ())) for t in TASKS}
    mine = set(sections.get(task, ()))
    return {m for t, names in sections.items() if t != task for m in names} - mine
