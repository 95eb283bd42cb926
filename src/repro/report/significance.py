"""Paired bootstrap resampling of test examples: is a system's score different from a baseline's?

The test is sacrebleu's paired bootstrap (`sacrebleu.significance._paired_bs_test`, itself the
Moses `bootstrap-hypothesis-difference-significance.pl`): draw `n_samples` resamples of the test
examples with replacement (the same indices for both systems), score both systems on each, and
count how often the centred absolute difference of the resampled scores exceeds the observed
absolute difference: p = (count + 1) / (n_samples + 1).

It is written here once over per-example *statistics* so that every metric shares the same
resampling: for BLEU and chrF++ the statistics are sacrebleu's own sufficient statistics and the
score is sacrebleu's corpus score of their sum (so a single seed gives exactly sacrebleu's
p-value); for ROUGE and accuracy the statistic is the example's score and the corpus score is
the mean; macro-F1 is recomputed on each resample from (prediction, gold) pairs. These are
recomputed from each run's predictions and references. Knowledge metrics use the per-example
scores evaluation stored in metrics.json (`per_example`: null where an example does not count,
e.g. one without a gold answer), so the test resamples exactly what the run reports; the corpus
score is the mean over the examples that count.
With several seeds, each resample scores every seed's predictions on the same examples and the
systems are compared by their seed-averaged scores (the number the tables show).

Metrics without per-example values (COMET, BERTScore as stored) get no test.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repro.io import align
from repro.metrics.classification import parse_choice
from repro.report.cells import RowKey
from repro.runs import Run

log = logging.getLogger(__name__)

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
    """Corpus score = mean of the per-example scores that count (stats: (n_examples,), NaN
    where an example does not count; 0 for a resample where none does)."""
    rows = _all_rows(stats, idxs)
    counted = ~np.isnan(rows)
    total = np.where(counted, rows, 0.0).sum(axis=1)
    n = counted.sum(axis=1)
    return np.divide(total, n, out=np.zeros_like(total), where=n > 0)


def mean_scorer(values: Sequence[float | None]) -> Scorer:
    """A metric that is the mean of per-example values (ROUGE, accuracy, KILT EM/F1, ...);
    None marks an example that does not count."""
    return Scorer(np.array([np.nan if v is None else v for v in values], dtype=np.float64),
                  mean_score)


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


def example_scorers(
    task: str,
    predictions: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    signatures: dict[str, str] | None = None,
) -> dict[str, Scorer]:
    """Scorers recomputed from one run's predictions (aligned to the references by id): BLEU
    and chrF++, ROUGE-1/2/L, accuracy and macro-F1; none for knowledge (see `stored_scorers`).

    `signatures` (metric -> signature from metrics.json) selects e.g. sacrebleu's tokenizer,
    so that the resampled score is the one the run reports.
    """
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
        gold = [int(r["label"]) for r in references]
        pred = [parse_choice(p.get("hypothesis"), len(r["choices"]))
                for p, r in zip(preds, references, strict=True)]
        return {
            "accuracy": mean_scorer([100.0 * (p == g) for p, g in zip(pred, gold, strict=True)]),
            "macro_f1": macro_f1_scorer(pred, gold),
        }
    return {}


def stored_scorers(per_example: Mapping[str, Any] | None) -> dict[str, Scorer]:
    """Scorers of the per-example scores metrics.json stores (knowledge runs: `per_example`
    {"ids", "scores": {metric: [x100 or null]}}, in reference order)."""
    scores = (per_example or {}).get("scores") or {}
    return {m: mean_scorer(v) for m, v in scores.items()}


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
        " metrics (knowledge: the per-example scores stored by evaluation), macro-F1 recomputed"
        " per resample; seed-averaged scores when there are several seeds). No test for COMET"
        " and BERTScore (no per-example scores stored) nor for averages."
    )


# --- p-values of the table rows -------------------------------------------------------------


def run_scorers(
    r: Mapping[str, Any],
    predictions: Sequence[dict[str, Any]] | None,
    references: Sequence[dict[str, Any]] | None,
) -> dict[str, Scorer]:
    """A run's scorers whose full-set score is the one its metrics.json reports; a metric
    whose recomputed score differs (stale predictions) is left out, with a warning."""
    metrics = r.get("metrics") or {}
    if r.get("per_example"):
        scorers = stored_scorers(r["per_example"])
    elif predictions is not None and references is not None:
        sigs = {k: (v.get("signature") or "") for k, v in metrics.items() if isinstance(v, dict)}
        scorers = example_scorers(r["task"], predictions, references, sigs)
    else:
        return {}
    out = {}
    for metric, s in scorers.items():
        entry = metrics.get(metric)
        reported = entry.get("value") if isinstance(entry, dict) else None
        if reported is None:
            continue
        if not consistent(s, reported):
            log.warning("%s: %s recomputed %.4f != reported %s; left out of the significance "
                        "test", Run.from_record(r).id, metric, s.score(), reported)
            continue
        out[metric] = s
    return out


def pvalues(
    results: Sequence[Mapping[str, Any]],
    pairs: Mapping[tuple[str, RowKey], RowKey],
    predictions: Mapping[str, Sequence[dict[str, Any]]],
    references: Mapping[tuple[str, str], Sequence[dict[str, Any]]],
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
) -> dict[tuple[RowKey, str, str], float]:
    """p-values {(row, metric, dataset): p} of each row against its baseline row.

    pairs: (task, row) -> baseline row (repro.report.tables.baseline_pairs); predictions: run
    id -> predictions; references: (task, dataset) -> references. A metric is tested where
    both rows have scorers for it on the same number of examples (every seed of each row).
    """
    compared = {*pairs, *((task, base) for (task, _), base in pairs.items())}
    scorers: dict[tuple[str, str, RowKey], list[dict[str, Scorer]]] = defaultdict(list)
    for r in results:
        row = (r["model"], r["method"], r["variant"])
        if (r["task"], row) in compared:
            scorers[(r["task"], r["dataset"], row)].append(run_scorers(
                r, predictions.get(Run.from_record(r).id),
                references.get((r["task"], r["dataset"]))))
    out: dict[tuple[RowKey, str, str], float] = {}
    for (task, dataset, row), mine in scorers.items():
        base = pairs.get((task, row))
        theirs = scorers.get((task, dataset, base)) if base else None
        for metric in dict.fromkeys(m for s in mine for m in s) if theirs else ():
            a = [s[metric] for s in mine if metric in s]
            b = [s[metric] for s in theirs or () if metric in s]
            if a and b and len({x.n for x in a + b}) == 1:
                out[(row, metric, dataset)] = paired_bootstrap(a, b, n_samples, seed).p_value
    return out
