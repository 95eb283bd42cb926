"""Paired bootstrap resampling of test examples: is a system's score different from a baseline's?

The test is sacrebleu's paired bootstrap (`sacrebleu.significance._paired_bs_test`, itself the
Moses `bootstrap-hypothesis-difference-significance.pl`): draw `n_samples` resamples of the test
examples with replacement (the same indices for both systems), score both systems on each, and
count how often the centred absolute difference of the resampled scores exceeds the observed
absolute difference: p = (count + 1) / (n_samples + 1).

It is written here once over per-example *statistics* so that every metric shares the same
resampling: for BLEU and chrF++ the statistics are sacrebleu's own sufficient statistics and the
score is sacrebleu's corpus score of their sum (so a single seed gives exactly sacrebleu's
p-value); for ROUGE, accuracy, EM and F1 the statistic is the example's score and the corpus
score is the mean; macro-F1 is recomputed on each resample from (prediction, gold) pairs.
With several seeds, each resample scores every seed's predictions on the same examples and the
systems are compared by their seed-averaged scores (the number the tables show).

Metrics without per-example values (COMET, BERTScore as stored) get no test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SAMPLES = 1000
DEFAULT_SEED = 12345  # sacrebleu's default SACREBLEU_SEED
ALPHA = 0.05
MARK = "†"


@dataclass(frozen=True)
class Scorer:
    """Per-example statistics of one system's output and how a resample of them is scored.

    `score_many(stats, idxs)` returns the corpus score of each resample `stats[idxs[i]]`
    (idxs: (n_samples, n_examples) integer array); `score_many(stats, None)` is the score of the
    whole test set, as a one-element array.
    """

    stats: np.ndarray
    score_many: Callable[[np.ndarray, np.ndarray | None], np.ndarray]

    @property
    def n(self) -> int:
        return int(self.stats.shape[0])

    def score(self) -> float:
        return float(self.score_many(self.stats, None)[0])


@dataclass(frozen=True)
class BootstrapResult:
    p_value: float
    system: float  # (seed-averaged) score of the system on the full test set
    baseline: float
    n_samples: int
    n_examples: int
    n_seeds: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def _all_rows(stats: np.ndarray, idxs: np.ndarray | None) -> np.ndarray:
    """stats as a (n_samples, n_examples, ...) batch of resamples (one resample: all rows)."""
    return stats[None] if idxs is None else stats[idxs]


def mean_score(stats: np.ndarray, idxs: np.ndarray | None) -> np.ndarray:
    """Corpus score = mean of per-example scores (stats: (n_examples,))."""
    return _all_rows(stats, idxs).mean(axis=1)


def mean_scorer(values: Sequence[float]) -> Scorer:
    """A metric that is the mean of per-example values (ROUGE, accuracy, EM, token F1)."""
    return Scorer(np.asarray(values, dtype=np.float64), mean_score)


def _sacrebleu_score_many(metric: Any) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    def score_many(stats: np.ndarray, idxs: np.ndarray | None) -> np.ndarray:
        return np.array(
            [metric._compute_score_from_stats(s.sum(0)).score for s in _all_rows(stats, idxs)]
        )

    return score_many


def parse_signature(signature: str) -> dict[str, str]:
    """sacrebleu signature "nrefs:1|case:mixed|tok:13a|..." -> {"nrefs": "1", ...}."""
    out = {}
    for part in (signature or "").split("|"):
        key, sep, value = part.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def sacrebleu_metric(metric: str, signature: str = "") -> Any:
    """The sacrebleu metric object of a BLEU or chrF++ signature (defaults when absent)."""
    from sacrebleu.metrics import BLEU, CHRF

    sig = parse_signature(signature)
    lowercase = sig.get("case") == "lc"
    if metric == "bleu":
        return BLEU(
            tokenize=sig.get("tok", "13a"),
            lowercase=lowercase,
            smooth_method=sig.get("smooth", "exp"),
            effective_order=sig.get("eff") == "yes",
        )
    if metric == "chrf":
        return CHRF(
            char_order=int(sig.get("nc", 6)),
            word_order=int(sig.get("nw", 2)),
            lowercase=lowercase,
            whitespace=sig.get("space") == "yes",
        )
    raise ValueError(f"not a sacrebleu metric: {metric}")


def sacrebleu_scorer(
    metric: str, hyps: Sequence[str], refs: Sequence[str], signature: str = ""
) -> Scorer:
    """BLEU/chrF++ sufficient statistics per sentence (float32, as sacrebleu resamples them)."""
    m = sacrebleu_metric(metric, signature)
    stats = m._extract_corpus_statistics(list(hyps), [list(refs)])
    return Scorer(np.array(stats, dtype="float32"), _sacrebleu_score_many(m))


def macro_f1_score(stats: np.ndarray, idxs: np.ndarray | None) -> np.ndarray:
    """Macro-F1 x100 per resample; stats: (n_examples, 2) int rows (predicted or -1, gold).

    Classes are those in the resample's gold labels or parsed predictions, as in
    `repro.metrics.classification.accuracy_macro_f1`; an unparsed prediction (-1) is wrong.
    """
    out = []
    for s in _all_rows(stats, idxs):
        pred, gold = s[:, 0], s[:, 1]
        k = int(max(pred.max(initial=-1), gold.max(initial=-1))) + 1
        tp = np.bincount(gold[pred == gold], minlength=k)
        n_pred = np.bincount(pred[pred >= 0], minlength=k)
        n_gold = np.bincount(gold, minlength=k)
        present = (n_pred + n_gold) > 0
        denom = (n_pred + n_gold)[present]
        f1 = 2 * tp[present] / denom
        out.append(100.0 * f1.mean() if len(f1) else 0.0)
    return np.array(out)


def macro_f1_scorer(pred_labels: Sequence[int | None], gold_labels: Sequence[int]) -> Scorer:
    rows = [(-1 if p is None else int(p), int(g)) for p, g in zip(pred_labels, gold_labels,
                                                                  strict=True)]
    return Scorer(np.array(rows, dtype=np.int64).reshape(-1, 2), macro_f1_score)


def resample_indices(n_examples: int, n_samples: int = DEFAULT_SAMPLES,
                     seed: int | None = DEFAULT_SEED) -> np.ndarray:
    """The (n_samples, n_examples) indices sacrebleu draws: default_rng(seed).choice(...)."""
    rng = np.random.default_rng(seed)
    return rng.choice(n_examples, size=(n_samples, n_examples), replace=True)


def paired_bootstrap(
    system: Sequence[Scorer],
    baseline: Sequence[Scorer],
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
) -> BootstrapResult:
    """Paired bootstrap test of a system against a baseline; one Scorer per seed each.

    Every scorer must cover the same test examples in the same order. The compared scores are
    the means over each side's seeds (seeds need not pair up, but usually do). p is sacrebleu's
    (count + 1) / (n_samples + 1), except 1.0 when the observed scores are equal.
    """
    if not system or not baseline:
        raise ValueError("paired_bootstrap needs at least one system and one baseline scorer")
    sizes = {s.n for s in (*system, *baseline)}
    if len(sizes) != 1:
        raise ValueError(f"scorers cover different numbers of examples: {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("no test examples")
    sys_score = float(np.mean([s.score() for s in system]))
    base_score = float(np.mean([s.score() for s in baseline]))
    diff = abs(sys_score - base_score)
    idxs = resample_indices(n, n_samples, seed)
    sys_scores = np.mean([s.score_many(s.stats, idxs) for s in system], axis=0)
    base_scores = np.mean([s.score_many(s.stats, idxs) for s in baseline], axis=0)
    sample_diffs = np.abs(sys_scores - base_scores)
    centred = sample_diffs - sample_diffs.mean()
    p = (int(np.sum(centred > diff)) + 1) / (len(centred) + 1)
    if diff <= 1e-9 * max(1.0, abs(base_score)):
        p = 1.0  # identical scores: sacrebleu's formula would give 1 / (n + 1) here
    return BootstrapResult(p, sys_score, base_score, n_samples, n, len(system))


# --- per-example statistics of each metric, from predictions and references -----------------

def _rouge_values(hyps: Sequence[str], refs: Sequence[str], signature: str) -> dict[str, list]:
    from rouge_score.rouge_scorer import RougeScorer

    stem = "stem=no" not in (signature or "")
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=stem)
    out: dict[str, list[float]] = {"rouge1": [], "rouge2": [], "rougeL": []}
    for h, r in zip(hyps, refs, strict=True):
        s = scorer.score(r, h)
        for k, values in out.items():
            values.append(100.0 * s[k].fmeasure)
    return out


SUPPORTED: dict[str, tuple[str, ...]] = {
    "translation": ("bleu", "chrf"),
    "summarization": ("rouge1", "rouge2", "rougeL"),
    "multiple_choice": ("accuracy", "macro_f1"),
    "knowledge": ("exact_match", "f1"),
}
"""Metrics with a per-example test, per task (the rest get no significance mark)."""


def example_scorers(
    task: str,
    predictions: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    signatures: dict[str, str] | None = None,
) -> dict[str, Scorer]:
    """Scorers of every supported metric of `task` for one run's aligned predictions.

    `signatures` (metric -> signature from metrics.json) selects e.g. sacrebleu's tokenizer,
    so that the resampled score is the one the run reports.
    """
    from repro.metrics.evaluate import align

    signatures = signatures or {}
    preds = align(list(predictions), list(references))
    hyps = [p.get("hypothesis") or "" for p in preds]
    if task == "translation":
        refs = [r["target"] for r in references]
        return {m: sacrebleu_scorer(m, hyps, refs, signatures.get(m, "")) for m in ("bleu", "chrf")}
    if task == "summarization":
        refs = [r["target"] for r in references]
        values = _rouge_values(hyps, refs, signatures.get("rougeL", ""))
        return {m: mean_scorer(v) for m, v in values.items()}
    if task == "multiple_choice":
        from repro.metrics.classification import parse_choice

        gold = [int(r["label"]) for r in references]
        pred = [parse_choice(p.get("hypothesis"), len(r["choices"]))
                for p, r in zip(preds, references, strict=True)]
        return {
            "accuracy": mean_scorer([100.0 * (p == g) for p, g in zip(pred, gold, strict=True)]),
            "macro_f1": macro_f1_scorer(pred, gold),
        }
    if task == "knowledge":
        from repro.metrics.evaluate import _answers, _normalize_answer, _token_f1

        golds = [_answers(r) for r in references]
        em = [100.0 * max(_normalize_answer(h) == _normalize_answer(a) for a in g)
              for h, g in zip(hyps, golds, strict=True)]
        f1 = [100.0 * max(_token_f1(h, a) for a in g) for h, g in zip(hyps, golds, strict=True)]
        return {"exact_match": mean_scorer(em), "f1": mean_scorer(f1)}
    return {}


def consistent(scorer: Scorer, reported: float | None, tol: float = 0.01) -> bool:
    """Does the recomputed full-set score match the reported one (same predictions/config)?"""
    if reported is None or not math.isfinite(reported):
        return False
    return abs(scorer.score() - float(reported)) <= tol * max(1.0, abs(float(reported)))


def describe(n_samples: int = DEFAULT_SAMPLES, seed: int | None = DEFAULT_SEED) -> str:
    """The footnote text explaining the significance mark."""
    return (
        f"{MARK} = differs from the baseline row with p < {ALPHA:g} (paired bootstrap resampling of"
        f" the test examples, {n_samples} resamples, seed {seed}; sacrebleu's paired bootstrap"
        " statistics for BLEU/chrF++, the same resampling of per-example scores for the other"
        " metrics, macro-F1 recomputed per resample; seed-averaged scores when there are several"
        " seeds). No test for COMET and BERTScore (no per-example scores stored) nor for averages."
    )

