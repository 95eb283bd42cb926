"""Corpus BLEU and chrF++ with sacrebleu, one reference per hypothesis, on a 0-100 scale."""

from __future__ import annotations

from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from repro.io import DataError


def check_pairs(hyps: list[str], refs: list[str]) -> None:
    """Raise DataError unless hypotheses and references pair up one to one."""
    if len(hyps) != len(refs):
        raise DataError(f"{len(hyps)} hypotheses for {len(refs)} references")


def bleu_tokenizer(target_lang: str | None) -> str:
    """sacrebleu tokenizer for a target language: "zh" for Chinese, else the default 13a."""
    base = (target_lang or "").replace("_", "-").split("-")[0].lower()
    return "zh" if base == "zh" else "13a"


def bleu_chrf(
    hyps: list[str], refs: list[str], target_lang: str | None = None
) -> dict[str, dict[str, Any]]:
    """BLEU and chrF++ (chrF with word bigrams) with their sacrebleu signatures."""
    check_pairs(hyps, refs)
    if not hyps:
        return {"bleu": {"skipped": "no examples"}, "chrf": {"skipped": "no examples"}}
    out: dict[str, dict[str, Any]] = {}
    for name, metric in (
        ("bleu", BLEU(tokenize=bleu_tokenizer(target_lang))),
        ("chrf", CHRF(word_order=2)),
    ):
        score = metric.corpus_score(hyps, [refs])
        out[name] = {"value": float(score.score), "signature": str(metric.get_signature())}
    return out
