"""Grounding as the co-supervision paper scored it: revised AutoAIS over the [Cs]...[Ce] spans.

Source: kaistAI/Semiparametric_Token-Sequence_Co-Supervision @ 10e39b0, eval_metric.py
(`parse_cs_ce` 640-742, `revised_compute_autoais` 744-1002, reported as `rev.citation_rec`;
options 1509-1513, call 1696-1704). The code is ours. Per example:

1. the spans become a text with citations (parse_cs_ce 719-741): passages are numbered in order
   of first appearance; a span ending in "." becomes "span[n]. ", any other "span[n] "; empty
   spans add nothing; "</s>" is removed.
2. the text is split into sentences with NLTK's Punkt (831); none -> the example is skipped
   (834-836: left out of the mean).
3. a sentence without a citation is joined to the next cited one; uncited sentences at the end
   are dropped (849-863). Each joined segment is checked against its citations (at most 3,
   889-890 and `--at_most_citations` 3 at 1510-1513; a citation out of range scores 0, 885-887):
   premise = the cited passages as "Title: {title}\\n{text}" joined by newlines (782-793,
   892-894); the segment, citations removed, is split into sentences again, and the segment
   scores the share of them the TRUE model judges entailed (898-907).
4. the example scores the mean over its segments (969: `rec = entail / len(sents)`); the metric
   is 100 x the mean over examples that were not skipped (999).

One deliberate difference: a citation is resolved to the passage retrieved for its span (the
prediction's `spans[i].passage_id`). The official code looks the number up in `item["docs"]`,
the retrieved passages in candidate-pool order (run_inference_ntp_nsp.py 242-248), which pairs
a span with another passage whenever the pool order differs from the retrieval order.

`parse_raw_output` reads spans out of a raw decoded text the official way, to cross-check the
`spans` a decoder writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from repro.metrics.alce import Judge, remove_citations
from repro.metrics.grounding import format_passage  # eval_metric.py 782-793
from repro.metrics.true_nli import judge_from_config, signature

Splitter = Callable[[str], list[str]]
CITATION = re.compile(r"\[\d+")  # eval_metric.py 855, 877


# --- reading spans out of a raw output ---------------------------------------------------------


def _cite_pairs(text: str) -> list[tuple[int, int, int, int]]:
    """(k, [Ret], [Cs], [Ce]) positions as eval_metric.py 686-717 pairs them (k: which [Ret])."""
    rets = [m.start() for m in re.finditer(r"\[Ret\]", text)]
    css = [m.start() for m in re.finditer(r"\[Cs\]", text)]
    ces = [m.start() for m in re.finditer(r"\[Ce\]", text)]
    pairs: list[tuple[int, int, int, int]] = []
    if not (rets and css and ces):
        return pairs
    cs_i = ce_i = 0
    for k, ret in enumerate(rets):
        if pairs and (ret < pairs[-1][2] or ret < pairs[-1][3]):
            continue
        while cs_i < len(css) - 1 and ret >= css[cs_i]:
            cs_i += 1
        if ret >= css[cs_i]:
            continue
        while ce_i < len(ces) - 1 and css[cs_i] >= ces[ce_i]:
            ce_i += 1
        if css[cs_i] >= ces[ce_i]:
            continue
        pairs.append((k, ret, css[cs_i], ces[ce_i]))
    return pairs


def parse_raw_output(raw_output: str, retrieved: Sequence[str],
                     ctx_truncate: bool = False) -> list[dict[str, Any]]:
    """Spans [{"text", "passage_id", "document"}] of a raw output, read as the official code does.

    Default (the paper's `ctx_truncate` False): "[Ret] doc [Cs] span [Ce]" triples paired as in
    eval_metric.py 686-717; span and document stripped (723-724); the k-th [Ret] is the k-th
    retrieval, so passage_id = retrieved[k]. With ctx_truncate (passages cut from the context,
    eval_metric.py 641-684): the text is split at "[Ce]"; a piece with one "[Cs]" gives the text
    after it, stripped of spaces; the i-th span belongs to the i-th retrieval (the official code
    keeps a counter for this that it never advances, so it cites the first passage each time).
    """
    spans: list[dict[str, Any]] = []
    if ctx_truncate:
        for piece in raw_output.split("[Ce]"):
            if "[Cs]" not in piece:
                continue
            if piece.count("[Cs]") != 1:
                raise ValueError(f"two [Cs] without [Ce] between them in {piece!r}")
            k = len(spans)
            if k >= len(retrieved):
                raise ValueError(f"span {k + 1} has no retrieval ({len(retrieved)} retrieved)")
            text = piece.split("[Cs]")[-1].replace("[Cs]", "").replace("[Ce]", "").strip(" ")
            spans.append({"text": text, "passage_id": retrieved[k], "document": None})
        return spans
    n_ret = raw_output.count("[Ret]")
    if n_ret != len(retrieved):
        raise ValueError(f"{n_ret} [Ret] in the raw output but {len(retrieved)} retrieved ids")
    for k, ret, cs, ce in _cite_pairs(raw_output):
        spans.append({"text": raw_output[cs + 4:ce].strip(), "passage_id": retrieved[k],
                      "document": raw_output[ret + 5:cs].strip()})
    return spans


# --- scoring ----------------------------------------------------------------------------------


def cited_text(spans: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """(the text with "[n]" citations, passage id of each citation number - 1)."""
    text, cited = "", []
    for span in spans:
        pid = str(span["passage_id"])
        if pid not in cited:
            cited.append(pid)
        item, n = str(span["text"]).strip(), cited.index(pid) + 1
        if item:
            text += f"{item[:-1]}[{n}]. " if item.endswith(".") else f"{item}[{n}] "
    return text.replace("</s>", ""), cited


def segments(text: str, split: Splitter) -> list[tuple[list[int], str]]:
    """(citation indices, target text) per cited segment of `text` (eval_metric.py 841-877)."""
    sents = split(text)
    targets = [remove_citations(s).strip() for s in sents]
    out: list[tuple[list[int], str]] = []
    pending: list[int] = []
    for i, sent in enumerate(sents):
        pending.append(i)
        refs = [int(r[1:]) - 1 for r in CITATION.findall(sent)]
        if refs:
            out.append((refs, " ".join(targets[j] for j in pending)))
            pending = []
    return out


def autoais_scores(
    spans: Sequence[Sequence[dict[str, Any]]],
    passages: dict[str, dict[str, Any]],
    ids: Sequence[str],
    judge: Judge,
    split: Splitter,
    at_most: int = 3,
) -> list[float | None]:
    """Per example: revised AutoAIS recall 0..1, None when skipped (no sentence)."""
    jobs: list[tuple[int, int, str, str]] = []  # (example, segment, premise, sentence)
    n_segments: list[int] = []
    seg_sizes: dict[tuple[int, int], int] = {}
    scores: list[float | None] = []
    for i, example_spans in enumerate(spans):
        text, cited = cited_text(example_spans)
        if not split(text):
            scores.append(None)
            n_segments.append(0)
            continue
        segs = segments(text, split)
        scores.append(0.0)
        n_segments.append(len(segs))
        for s, (refs, target) in enumerate(segs):
            if any(r < 0 or r >= len(cited) for r in refs):
                continue  # a citation out of range: the segment scores 0
            prem = "\n".join(format_passage(passages[cited[r]]) for r in refs[:at_most])
            sents = split(target)
            seg_sizes[(i, s)] = len(sents)
            jobs += [(i, s, prem, t) for t in sents]
    verdicts = judge([j[2] for j in jobs], [j[3] for j in jobs], [str(ids[j[0]]) for j in jobs])
    for (i, s, _, _), ok in zip(jobs, verdicts, strict=True):
        scores[i] = (scores[i] or 0.0) + float(ok) / seg_sizes[(i, s)] / n_segments[i]
    return [None if sc is None or not n_segments[i] else sc for i, sc in enumerate(scores)]


# --- the metrics.json entry -------------------------------------------------------------------


def prediction_spans(preds: Sequence[dict[str, Any]], index: dict[str, dict[str, Any]]
                     ) -> list[list[dict[str, Any]]] | None:
    """Each prediction's `spans` checked; None when no prediction has any; DataError else."""
    from repro.io import DataError

    have = ["spans" in p for p in preds]
    if not any(have):
        return None
    if not all(have):
        lacking = [p.get("id") for p, h in zip(preds, have, strict=True) if not h]
        raise DataError(f"{len(lacking)} predictions lack 'spans' while others have them "
                        f"(first: {lacking[0]!r})")
    out = []
    for p in preds:
        spans = p["spans"]
        if not isinstance(spans, list) or not all(
                isinstance(s, dict) and isinstance(s.get("text"), str)
                and isinstance(s.get("passage_id"), str | int) for s in spans):
            raise DataError(f"prediction {p.get('id')!r}: 'spans' is not a list of "
                            "{text, passage_id}")
        missing = [str(s["passage_id"]) for s in spans if str(s["passage_id"]) not in index]
        if missing:
            raise DataError(f"prediction {p.get('id')!r}: span passage id(s) "
                            f"{', '.join(map(repr, missing[:5]))} not in the passages file")
        out.append(spans)
    return out


def span_grounding(
    preds: Sequence[dict[str, Any]],
    index: dict[str, dict[str, Any]],
    cfg: dict[str, Any],
    true_cfg: dict[str, Any],
) -> tuple[dict[str, Any], list[float | None]]:
    """(metrics.json entry, per-example scores 0..1) of revised AutoAIS, or skipped with why.

    cfg: metrics.grounding (at_most_passages, 3); true_cfg: metrics.true_nli (the model).
    """
    from repro.metrics.grounding import _sentence_splitter  # looked up per call (tests patch it)

    spans = prediction_spans(preds, index)
    if spans is None:
        return {"skipped": "predictions carry no 'spans' (decoded without [Cs]...[Ce] "
                           "markup)"}, []
    split, splitter = _sentence_splitter()
    if splitter != "punkt":
        return {"skipped": "NLTK's trained Punkt is not installed, which the official sentence "
                           "split uses (scripts/predownload.py fetches punkt_tab)"}, []
    judge, why = judge_from_config(true_cfg)
    if judge is None:
        return {"skipped": why}, []
    at_most = int(cfg.get("at_most_passages", 3))
    scores = autoais_scores(spans, index, [str(p.get("id")) for p in preds], judge, split,
                            at_most)
    kept = [s for s in scores if s is not None]
    if not kept:
        return {"skipped": "no prediction has a [Cs]...[Ce] span to check",
                "no_span": len(scores)}, scores
    return {
        "value": 100.0 * sum(kept) / len(kept),
        "signature": f"cosup-rev.citation_rec|spans|{signature(true_cfg)}|at_most={at_most}"
                     f"|sentences={splitter}|passage=retrieved-for-span",
        "n": len(kept),
        "no_span": len(scores) - len(kept),
    }, scores
