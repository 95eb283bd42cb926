"""ALCE's correctness metrics as the co-supervision paper's evaluation computes them.

Sources (the code is ours; definitions and constants taken from):
- [cosup] kaistAI/Semiparametric_Token-Sequence_Co-Supervision @ 10e39b0, eval_metric.py;
- [alce] princeton-nlp/ALCE @ 246c476, eval.py and utils.py.

- `clean_output`: the output as the official evaluation scores it: newlines become spaces and
  "<|im_end|>", "<PAD>", "</s>", "[RELEVANT]" are removed ([cosup] 1575-1579), then citations
  ([cosup] 1586-1588 `remove_citations`, [alce] utils.py 29-30). (ALCE itself keeps only the
  first line, [alce] eval.py 508; the paper's code replaces newlines instead.)
- `exact_presence`: a normalized gold answer is a substring of the normalized output ([cosup]
  97-116, [alce] eval.py 69-85; SQuAD normalization, [alce] utils.py 12-26). An answer that
  normalizes to "" (e.g. "The") is present in every output, as in the official code.
- STR-EM (ASQA): per question, the mean over its QA pairs of "a short answer of the pair is
  present"; STR-Hit: 1 when every pair is ([cosup] 373-393, [alce] eval.py 158-179). A pair
  without short answers scores 0; a question without QA pairs is an error (the official mean
  over no pairs is NaN).
- Claim recall (ALCE-ELI5 `claims_nli`): per question, the share of its gold claims that the
  TRUE NLI model judges entailed by the output, premise = output, hypothesis = claim ([cosup]
  617-638, [alce] eval.py 282-298). A question without claims is an error (official: division
  by zero).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from repro.io import DataError
from repro.metrics.kilt import normalize_answer

Judge = Callable[[list[str], list[str], list[str]], list[bool]]
"""(premises, hypotheses, example ids) -> entailed?, one per pair (see repro.metrics.true_nli)."""

# [cosup] eval_metric.py 1575-1579: removed from every output before scoring.
OUTPUT_JUNK = ("<|im_end|>", "<PAD>", "</s>", "[RELEVANT]")


def remove_citations(text: str) -> str:
    """ALCE's `remove_citations` ([alce] utils.py 29-30): drops "[n" markers and every "]"."""
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", text)).replace(" |", "").replace("]", "")


def clean_output(text: str) -> str:
    """The output as the official evaluation scores it (newlines, junk tokens, citations)."""
    text = text.replace("\n", " ")
    for junk in OUTPUT_JUNK:
        text = text.replace(junk, "")
    return remove_citations(text)


def exact_presence(answers: Sequence[str], output: str) -> bool:
    """Some normalized answer is a substring of the normalized output (official, no guard)."""
    context = normalize_answer(output)
    return any(normalize_answer(a) in context for a in answers)


def qa_pairs_of(ref: dict[str, Any]) -> list[list[str]]:
    """The short answers of each QA pair of an ASQA reference; DataError naming it else."""
    pairs = ref.get("qa_pairs")
    if not isinstance(pairs, list) or not pairs:
        raise DataError(f"reference {ref.get('id')!r}: STR-EM needs a non-empty 'qa_pairs' list")
    out = []
    for pair in pairs:
        short = pair.get("short_answers") if isinstance(pair, dict) else None
        if not isinstance(short, list) or not all(isinstance(a, str) for a in short):
            raise DataError(f"reference {ref.get('id')!r}: a QA pair without a list of "
                            "'short_answers' strings")
        out.append(short)
    return out


def str_em(output: str, pairs: Sequence[Sequence[str]]) -> tuple[float, float]:
    """(STR-EM, STR-Hit) of one cleaned output, each 0..1."""
    if not pairs:
        raise ValueError("STR-EM needs at least one QA pair")
    acc = sum(exact_presence(short, output) for short in pairs) / len(pairs)
    return acc, float(acc == 1.0)


def claims_of(ref: dict[str, Any]) -> list[str]:
    """The gold claims of an ALCE-ELI5 reference; DataError naming it when there are none."""
    claims = ref.get("claims")
    if not isinstance(claims, list) or not claims or not all(isinstance(c, str) for c in claims):
        raise DataError(f"reference {ref.get('id')!r}: claim recall needs a non-empty 'claims' "
                        "list of strings")
    return claims


def claim_recall(outputs: Sequence[str], claims: Sequence[Sequence[str]],
                 ids: Sequence[str], judge: Judge) -> list[float]:
    """Per example (cleaned output, its claims): the share of claims entailed, 0..1."""
    premises, hypotheses, who, owner = [], [], [], []
    for i, (out, cl) in enumerate(zip(outputs, claims, strict=True)):
        for c in cl:
            premises.append(out)
            hypotheses.append(c)
            who.append(str(ids[i]))
            owner.append(i)
    verdicts = judge(premises, hypotheses, who)
    scores = [0.0] * len(outputs)
    for i, ok in zip(owner, verdicts, strict=True):
        scores[i] += float(ok) / len(claims[i])
    return scores
