"""`metrics.strict`: in a paper config a metric that cannot run is an error, not a skip.

A skipped entry is {"skipped": reason}; one that does not apply to the run by design (a KILT
metric of another kilt_task, retrieval metrics of a run without retrieval) also carries
"not_applicable": true and is never an error.
"""

from __future__ import annotations

from typing import Any

HINT = ("metrics.strict is true: a metric of the paper is never skipped; fix the cause, or set "
        "metrics.strict: false to record the skip")


class MetricUnavailable(RuntimeError):
    """A metric of a strict config could not be computed."""


def not_applicable(reason: str) -> dict[str, Any]:
    """A skip that is no failure: the metric does not apply to the run."""
    return {"skipped": reason, "not_applicable": True}


def failures(metrics: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(metric, reason) of every skipped entry that is not marked not applicable."""
    return [(name, str(e["skipped"])) for name, e in metrics.items()
            if isinstance(e, dict) and "skipped" in e and not e.get("not_applicable")]


def run_label(run: str | dict[str, Any]) -> str:
    """A run id from a run's fields ({task, dataset, model, method, variant, seed}) or a str."""
    if isinstance(run, dict):
        keys = ("task", "dataset", "model", "method", "variant")
        return "/".join([*(str(run.get(k)) for k in keys), f"seed{run.get('seed')}"])
    return str(run)


def require(metrics: dict[str, dict[str, Any]], run: str | dict[str, Any],
            strict: bool) -> None:
    """Raise MetricUnavailable naming the run, each failed metric and its reason (if strict)."""
    failed = failures(metrics) if strict else []
    if failed:
        lines = "\n".join(f"  {name}: {reason}" for name, reason in failed)
        raise MetricUnavailable(f"run {run_label(run)}: {len(failed)} metric(s) cannot run:\n"
                                f"{lines}\n({HINT})")
