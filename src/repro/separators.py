"""The warmup separators of a config, checked against each model's tokenizer before any job.

A separator must come back from the tokenizer as it went in (repro.methods.warmup.
separator_problem): mT5's SentencePiece normaliser maps "\\n" to a space, so a newline
separator would silently become a plain "▁" between warmup and target. scripts/predownload.py
runs this check once the checkpoints are downloaded; Warmup raises the same error at training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from repro import config as rc


def warmup_separators(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """model name -> separator -> ids of the warmup training runs that use it."""
    from repro.methods.options import WarmupOptions

    default = WarmupOptions().separator
    out: dict[str, dict[str, list[str]]] = {}
    for run in rc.training_runs(config):
        if run.method != "warmup":
            continue
        sep = rc.resolve(config, run)["method"]["options"].get("separator", default)
        out.setdefault(run.model, {}).setdefault(sep, []).append(run.id)
    return out


def separator_errors(config: dict[str, Any], tokenizer_for: Callable[[str], Any],
                     models: set[str] | None = None) -> list[str]:
    """One message per (model, separator) that does not survive the model's tokenizer;
    `tokenizer_for(model name)` loads it; `models`: only these (default: every model)."""
    from repro.methods.warmup import separator_problem

    errors = []
    for model, seps in warmup_separators(config).items():
        if models is not None and model not in models:
            continue
        tok = tokenizer_for(model)
        for sep, runs in seps.items():
            problem = separator_problem(tok, sep)
            if problem:
                errors.append(f"models.{model}: warmup separator {problem}; used by {runs[0]}"
                              + (f" and {len(runs) - 1} more runs" if len(runs) > 1 else "")
                              + ": choose a separator that survives this tokenizer")
    return errors
