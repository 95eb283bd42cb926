"""KILT downstream, retrieval and KILT-score metrics, plus the co-supervision code's answer rates.

Definitions follow KILT's official scripts (facebookresearch/KILT, kilt/eval_downstream.py and
kilt/eval_retrieval.py), re-implemented here:
- answers: the gold answers stripped, empty ones dropped; a score is the max over them.
- exact match / token F1: SQuAD normalization (lower, no punctuation, no articles a/an/the,
  squeezed whitespace); F1 is 0 when no token is shared (also for an empty prediction).
- accuracy: the stripped prediction equals a gold answer exactly (no normalization).
- ROUGE-L: F of the summary-level union LCS as the `rouge` 1.0.1 package computes it (KILT's
  choice): raw text split into sentences on "." and words on " ", unique words (sets),
  F = 2PR / (P + R + 1e-8); an empty prediction or reference scores 0.
- an empty prediction scores 0 on every downstream metric and still counts.
- R-precision: per gold evidence set, the share of the first R distinct retrieved pages that are in
  it (R = the set's size, 0 for an empty set); the max over the sets.
- recall@k: evidence sets count as one rank position each, reached when their last page is
  retrieved; the share of distinct evidence sets complete within the first k positions.
- KILT scores: a downstream score counts only where R-precision is 1, else 0.
Co-supervision code (kaistAI/Semiparametric_Token-Sequence_Co-Supervision @ 10e39b0,
eval_metric.py), on the output as that code cleans it (repro.metrics.alce.clean_output):
- answer in output (its `answer_em`, 97-116 and 171-252): some normalized gold answer is a
  substring of the normalized output; an answer that normalizes to "" (e.g. "The") is in every
  output, and a question without answers scores 0 and counts, as in the official code.
- answer in retrieved (its `rev.support_em`, 1307-1364): some gold answer is a raw,
  case-sensitive substring of some retrieved passage rendered "title :: text" (passages
  deduplicated by id); questions without answers are left out.
- support exist (its `support_exist`, 1367-1444): some retrieved passage's page is a gold
  provenance page; questions without gold provenance are left out (1383-1388), a question
  without retrieved passages scores 0. The official code compares passage ids with gold ids of
  its own (unreleased) pools; pages here are wikipedia ids or titles (`page_match`).

Counting rules of the KILT metrics (what is in the denominator):
- examples without any gold answer (unanswerable) are left out of every KILT answer-based
  metric, as KILT's data validation rejects gold records without outputs; the count is
  reported as `unanswerable`.
- examples with empty gold provenance count, and score 0 on R-precision and recall@k (KILT's rule:
  an empty evidence set can never be matched); the count is reported as `no_provenance`.
- an example without retrieved passages counts, and scores 0 on every retrieval metric.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

KILT_TASKS: tuple[str, ...] = ("qa", "slot_filling", "fact_check", "dialogue", "long_form")
DOWNSTREAM_METRICS: tuple[str, ...] = ("exact_match", "f1", "accuracy", "rougeL")
TASK_DOWNSTREAM: dict[str, tuple[str, ...]] = {
    "qa": ("exact_match", "f1"),
    "slot_filling": ("accuracy", "exact_match", "f1"),
    "fact_check": ("accuracy",),
    "dialogue": ("f1", "rougeL"),
    "long_form": ("rougeL", "f1"),
}
"""The downstream metrics KILT reports for each kind of task (the first is KILT's main one)."""
CORRECTNESS: dict[str, str] = {
    "qa": "answer_in_output",
    "slot_filling": "answer_in_output",
    "fact_check": "answer_in_output",
    "dialogue": "f1",
    "long_form": "rougeL",
}
"""The paper's correctness per kind (eval_metric.py 1625-1646: `answer_em` for every KILT set,
`unigram_f1` for WoW, `rougel` for ELI5). WoW's official unigram F1 (134-168) is this token F1
against its single answer, except that the official code appends an empty output's score twice
(148-154), weighting it double in the mean; it counts once here. ELI5's `rougel` (1224-1250) is
the `rouge` package's ROUGE-L F, max over answers, as `rouge_l`."""
RETRIEVAL: dict[str, str] = {
    "qa": "answer_in_retrieved",
    "slot_filling": "answer_in_retrieved",
    "fact_check": "support_exist",
    "dialogue": "support_exist",
    "long_form": "support_exist",
}
"""The paper's retrieval score per kind (eval_metric.py 1596-1617): answer in a retrieved passage
for NQ, TriviaQA, zsRE, T-REx, else a gold page retrieved (HotpotQA, a qa set, sets it per
dataset: datasets.<name>.knowledge_metrics.retrieval)."""
RECALL_K = 5  # KILT's eval_downstream reports Rprec and recall@5

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """KILT/SQuAD normalization: lowercase, drop punctuation and articles, squeeze whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def clean_answers(answers: Iterable[str]) -> list[str]:
    """Gold answers as KILT reads them: stripped, non-empty, each once (first order kept)."""
    return list(dict.fromkeys(a.strip() for a in answers if a and a.strip()))


# --- downstream ---------------------------------------------------------------------------


def token_f1(prediction: str, gold: str) -> float:
    """KILT token F1 of two strings after normalization (0 when no token is shared)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def _rouge_sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in text.split(".") if len(s) > 0]


def _lcs_words(ref: list[str], hyp: list[str]) -> set[str]:
    """Words of the LCS of ref and hyp, traced back as the `rouge` package does."""
    n, m = len(ref), len(hyp)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if ref[i - 1] == hyp[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    words: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if ref[i - 1] == hyp[j - 1]:
            words.add(ref[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return words


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F as KILT computes it (`rouge` 1.0.1, summary level, exclusive); 0 if empty."""
    hyp, ref = _rouge_sentences(prediction), _rouge_sentences(gold)
    if not hyp or not ref:
        return 0.0  # the package raises "Hypothesis is empty."; KILT scores it 0
    m = len({w for s in ref for w in s.split(" ")})
    n = len({w for s in hyp for w in s.split(" ")})
    union: set[str] = set()
    for r in ref:
        for h in hyp:
            union |= _lcs_words(r.split(" "), h.split(" "))
    recall, precision = len(union) / m, len(union) / n
    return 2.0 * (precision * recall) / (precision + recall + 1e-8)


def downstream_scores(prediction: str, answers: Sequence[str]) -> dict[str, float]:
    """{exact_match, f1, accuracy, rougeL} of one prediction, each 0..1, max over `answers`.

    `answers` must be cleaned (see `clean_answers`) and non-empty; an empty prediction scores 0.
    """
    if not answers:
        raise ValueError("downstream_scores needs at least one gold answer")
    guess = prediction.strip()
    if not guess:
        return dict.fromkeys(DOWNSTREAM_METRICS, 0.0)
    norm = normalize_answer(guess)
    return {
        "exact_match": float(any(norm == normalize_answer(a) for a in answers)),
        "f1": max(token_f1(guess, a) for a in answers),
        "accuracy": float(guess in answers),
        "rougeL": max(rouge_l(guess, a) for a in answers),
    }


# --- retrieval ----------------------------------------------------------------------------


def _distinct(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(i).strip() for i in ids))


def r_precision(retrieved: Sequence[str], evidence_sets: Sequence[Sequence[str]]) -> float:
    """KILT R-precision of retrieved page ids: max over evidence sets, 0 without any."""
    guess = _distinct(retrieved)
    best = 0.0
    for ev in evidence_sets:
        gold = set(_distinct(ev))
        if gold:
            best = max(best, sum(g in gold for g in guess[: len(gold)]) / len(gold))
    return best


def evidence_rank(retrieved: Sequence[str], evidence_sets: Sequence[Sequence[str]]) -> list[Any]:
    """KILT's rank: True where an evidence set is completed, False for a page in no set, and a
    placeholder for a set still partial (moved to its latest page)."""
    sets: list[set[str]] = []
    for ev in evidence_sets:
        s = set(_distinct(ev))
        if s not in sets:
            sets.append(s)
    rank: list[Any] = []
    for page in _distinct(retrieved):
        found = False
        for idx, s in enumerate(sets):
            if page in s:
                found = True
                key = f"evidence_set:{idx}"
                if key in rank:
                    rank.remove(key)
                s.remove(page)
                rank.append(True if not s else key)
        if not found:
            rank.append(False)
    return rank


def recall_at_k(retrieved: Sequence[str], evidence_sets: Sequence[Sequence[str]], k: int) -> float:
    """KILT recall@k: completed distinct evidence sets in the first k rank positions / their
    number (an empty set counts in the number and is never completed); 0 without sets or pages."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    distinct: list[set[str]] = []
    for ev in evidence_sets:
        s = set(_distinct(ev))
        if s not in distinct:
            distinct.append(s)
    if not distinct or not retrieved:
        return 0.0
    return evidence_rank(retrieved, evidence_sets)[:k].count(True) / len(distinct)


# --- co-supervision code's answer rates -----------------------------------------------------


def answer_in_output(output: str, answers: Sequence[str]) -> float:
    """1.0 if a normalized gold answer is a substring of the normalized output (official: an
    answer that normalizes to nothing, e.g. "The", matches any output; no answers: 0.0)."""
    text = normalize_answer(output)
    return float(any(normalize_answer(a) in text for a in answers))


def answer_in_passages(passages: Sequence[dict[str, Any]], answers: Sequence[str]) -> float:
    """1.0 if a gold answer is a raw substring of a passage rendered "title :: text"."""
    seen: set[str] = set()
    for p in passages:
        if p["id"] in seen:
            continue
        seen.add(p["id"])
        doc = f"{p['title']} :: {p['text']}"
        if any(a in doc for a in answers):
            return 1.0
    return 0.0


def support_exist(pages: Sequence[str], gold_pages: Iterable[str]) -> float | None:
    """1.0 if a retrieved page is a gold page, 0.0 if none is; None without gold pages."""
    gold = set(_distinct(gold_pages))
    if not gold:
        return None
    return float(any(p in gold for p in _distinct(pages)))


# --- per-example table ----------------------------------------------------------------------


def example_scores(
    prediction: str,
    answers: Sequence[str],
    evidence_sets: Sequence[Sequence[str]],
    retrieved: Sequence[dict[str, Any]] | None,
    page_of: dict[str, str] | None = None,
) -> dict[str, float | None]:
    """Every KILT and answer-rate score of one example, 0..1; None where it does not count.

    answers: cleaned gold answers (empty = unanswerable); evidence_sets: gold page sets;
    retrieved: the retrieved passages {id, title, text, ...} in order (None = no retrieval);
    page_of: passage id -> page (default: the passage id is the page id).
    """
    out: dict[str, float | None] = dict.fromkeys(
        (*DOWNSTREAM_METRICS, "answer_in_output", "answer_in_retrieved", "support_exist",
         "r_precision", f"recall_at_{RECALL_K}", *(f"kilt_{m}" for m in DOWNSTREAM_METRICS)))
    out["answer_in_output"] = answer_in_output(prediction, answers)
    if answers:
        out.update(downstream_scores(prediction, answers))
    if retrieved is None:
        return out
    pages = [(page_of or {}).get(p["id"], p["id"]) for p in retrieved]
    rprec = r_precision(pages, evidence_sets)
    out["support_exist"] = support_exist(pages, [g for ev in evidence_sets for g in ev])
    out["r_precision"] = rprec
    out[f"recall_at_{RECALL_K}"] = recall_at_k(pages, evidence_sets, RECALL_K)
    if answers:
        out["answer_in_retrieved"] = answer_in_passages(retrieved, answers)
        for m in DOWNSTREAM_METRICS:
            score = out[m]
            out[f"kilt_{m}"] = score if rprec == 1 and score is not None else 0.0
    return out


def mean_x100(values: Sequence[float | None]) -> tuple[float | None, int]:
    """(100 x mean of the values that count, how many count); (None, 0) if none counts."""
    kept = [v for v in values if v is not None]
    return (100.0 * sum(kept) / len(kept), len(kept)) if kept else (None, 0)
