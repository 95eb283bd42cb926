"""Score a task's predictions against its normalized references."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repro.io import DataError, align, few, read_json, read_jsonl
from repro.metrics import alce, kilt
from repro.metrics.autoais import span_grounding
from repro.metrics.classification import accuracy_macro_f1, parse_choice
from repro.metrics.comet import comet_score
from repro.metrics.grounding import grounding
from repro.metrics.kilt_export import page_id, passage_index, retrieved_passages
from repro.metrics.mt import bleu_chrf
from repro.metrics.strict import not_applicable, require
from repro.metrics.summarization import bertscore, rouge
from repro.metrics.true_nli import judge_from_config
from repro.metrics.true_nli import signature as true_signature
from repro.metrics.warmup_analysis import warmup_analysis
from repro.tasks import TASK_METRICS


def _hypothesis(pred: dict[str, Any]) -> str | None:
    hyp = pred.get("hypothesis")
    if hyp is not None and not isinstance(hyp, str):
        raise DataError(f"prediction {pred.get('id')!r}: hypothesis is not a string")
    return hyp


def _targets(references: list[dict[str, Any]]) -> list[str]:
    for ref in references:
        if not isinstance(ref.get("target"), str):
            raise DataError(f"reference {ref.get('id')!r}: target is missing or not a string")
    return [r["target"] for r in references]


def _wanted(task: str, cfg: dict[str, Any]) -> list[str]:
    if task not in TASK_METRICS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_METRICS)}")
    wanted = cfg.get("metrics") or TASK_METRICS[task]
    unknown = [m for m in wanted if m not in TASK_METRICS[task]]
    if unknown:
        raise ValueError(f"metrics {unknown} not available for {task}: {list(TASK_METRICS[task])}")
    return list(wanted)


def evaluate_task(
    task: str,
    predictions: list[dict[str, Any]],
    references: list[dict[str, Any]],
    cfg: dict[str, Any],
    passages: list[dict[str, Any]] | None = None,
    comet: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Metrics of `task`, {name: {"value", "signature", ...} | {"skipped"}}, in TASK_METRICS order.

    cfg: target_lang, metrics (subset to compute), bertscore {...}, comet {...}; for knowledge
    kilt_task and grounding {...}, with `passages` the corpus the predictions retrieved from. A
    missing hypothesis (None) scores as empty output, or as an unparsable choice. `comet`: the
    COMET entry already computed (by the pipeline's comet rule), else COMET is computed here.
    """
    wanted = _wanted(task, cfg)
    if task == "knowledge":
        return knowledge_metrics(predictions, references, passages or [], cfg)[0]
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
            out["comet"] = comet or comet_score(sources, hyps, targets,
                                                cfg.get("comet") or {})["comet"]
    elif task == "summarization":
        targets = _targets(references)
        if {"rouge1", "rouge2", "rougeL"} & set(wanted):
            out.update(rouge(hyps, targets))
        if "bertscore" in wanted:
            out.update(bertscore(hyps, targets, cfg.get("bertscore") or {}))
    else:  # multiple_choice
        try:
            num = [len(r["choices"]) for r in references]
            gold = [int(r["label"]) for r in references]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"multiple_choice reference without valid choices/label: {e}") from e
        pred_labels = [parse_choice(h, n) for h, n in zip(raw, num, strict=True)]
        out.update(accuracy_macro_f1(pred_labels, gold, max(num, default=0)))
    return {m: out[m] for m in TASK_METRICS[task] if m in wanted}


# --- knowledge (KILT and co-supervision metrics) ----------------------------------------------

CORRECTNESS_CHOICES = ("answer_in_output", "str_em", "claims_nli", "f1", "rougeL",
                       "exact_match", "accuracy")
RETRIEVAL_CHOICES = ("answer_in_retrieved", "support_exist", "r_precision", "none")
PAGE_MATCHES = ("wikipedia_id", "title")
RETRIEVAL_METRICS = ("support_exist", "r_precision", f"recall_at_{kilt.RECALL_K}",
                     "answer_in_retrieved", *(f"kilt_{m}" for m in kilt.DOWNSTREAM_METRICS))


def _gold_answers(ref: dict[str, Any]) -> list[str]:
    """Cleaned gold answers of a knowledge reference ([] = unanswerable)."""
    answers = ref.get("answers") if "answers" in ref else [ref.get("target") or ""]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise DataError(f"reference {ref.get('id')!r}: answers is not a list of strings")
    return kilt.clean_answers(answers)


def _evidence_sets(ref: dict[str, Any], page_match: str = "wikipedia_id") -> list[list[str]]:
    """The reference's provenance as one evidence set of pages (wikipedia ids or titles)."""
    prov = ref.get("provenance") or []
    if not isinstance(prov, list) or not all(isinstance(p, dict) and "wikipedia_id" in p
                                             for p in prov):
        raise DataError(f"reference {ref.get('id')!r}: provenance is not a list of "
                        "{wikipedia_id, title}")
    if page_match == "title":
        return [[str(p.get("title") or "").strip() for p in prov if p.get("title")]]
    return [[str(p["wikipedia_id"]) for p in prov]]


def _page(passage: dict[str, Any], page_match: str) -> str:
    return passage["title"].strip() if page_match == "title" else page_id(passage)


def _all_retrieved(preds: list[dict[str, Any]], passages: list[dict[str, Any]]
                   ) -> list[list[dict[str, Any]]] | None:
    """Retrieved passages per prediction; None when no prediction has "retrieved"."""
    have = [p.get("retrieved") is not None for p in preds]
    if not any(have):
        return None
    if not all(have):
        lacking = [p["id"] for p, h in zip(preds, have, strict=True) if not h]
        raise DataError(f"{len(lacking)} predictions lack 'retrieved' while others have it "
                        f"({few(lacking)})")
    index = passage_index(passages, "passages.jsonl")
    return [retrieved_passages(p, index) or [] for p in preds]


def _entry(values: list[float | None], signature: str, why_none: str, **extra: Any
           ) -> dict[str, Any]:
    value, n = kilt.mean_x100(values)
    if value is None:
        return {"skipped": why_none}
    return {"value": value, "signature": signature, "n": n, **extra}


def _alias(entries: dict[str, dict[str, Any]], metric: str, what: str) -> dict[str, Any]:
    """`what` (correctness / retrieval) as the entry of `metric`, naming it."""
    e = dict(entries[metric])
    if "signature" in e:
        e["signature"] = f"{what}={metric}|{e['signature']}"
    return {**e, "metric": metric}


def metric_choice(cfg: dict[str, Any]) -> tuple[str, str, str, str]:
    """(kilt_task, correctness, retrieval, page_match) of a knowledge run's metrics settings.

    `knowledge_metrics` (datasets.<name>.knowledge_metrics) overrides the kilt_task defaults
    (repro.metrics.kilt.CORRECTNESS / RETRIEVAL); ValueError names a bad value."""
    kind = cfg.get("kilt_task") or "qa"
    if kind not in kilt.KILT_TASKS:
        raise ValueError(f"kilt_task {kind!r} (datasets.<name>.kilt_task) is not one of "
                         f"{list(kilt.KILT_TASKS)}")
    km = cfg.get("knowledge_metrics") or {}
    chosen = (km.get("correctness") or kilt.CORRECTNESS[kind],
              km.get("retrieval") or kilt.RETRIEVAL[kind], km.get("page_match") or "wikipedia_id")
    for key, value, allowed in zip(("correctness", "retrieval", "page_match"), chosen,
                                   (CORRECTNESS_CHOICES, RETRIEVAL_CHOICES, PAGE_MATCHES),
                                   strict=True):
        if value not in allowed:
            raise ValueError(f"datasets.<name>.knowledge_metrics.{key}: {value!r} is not one "
                             f"of {list(allowed)}")
    return kind, *chosen


def _alce_metrics(outs: list[str], references: list[dict[str, Any]], correctness: str,
                  cfg: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, list]]:
    """STR-EM / STR-Hit (references with qa_pairs) and claim recall (with claims)."""
    out: dict[str, dict[str, Any]] = {}
    per: dict[str, list] = {}
    if correctness == "str_em" or any("qa_pairs" in r for r in references):
        rows = [alce.str_em(o, alce.qa_pairs_of(r)) for o, r in zip(outs, references,
                                                                     strict=True)]
        per["str_em"], per["str_hit"] = [r[0] for r in rows], [r[1] for r in rows]
        for m in ("str_em", "str_hit"):
            out[m] = _entry(per[m], f"alce-{m}|norm=squad|substring|mean-over-qa_pairs",
                            "no examples")
    else:
        out["str_em"] = out["str_hit"] = not_applicable("references have no qa_pairs (ASQA)")
    if correctness == "claims_nli" or any("claims" in r for r in references):
        claims = [alce.claims_of(r) for r in references]
        judge, why = judge_from_config(cfg.get("true_nli") or {})
        if judge is None:
            out["claims_nli"] = {"skipped": why}
        else:
            ids = [str(r.get("id")) for r in references]
            per["claims_nli"] = alce.claim_recall(outs, claims, ids, judge)
            out["claims_nli"] = _entry(per["claims_nli"], "alce-claims_nli|premise=output|"
                                       + true_signature(cfg.get("true_nli") or {}),
                                       "no examples")
    else:
        out["claims_nli"] = not_applicable("references have no claims (ALCE-ELI5)")
    return out, per


def _grounding(preds: list[dict[str, Any]], hyps: list[str], passages: list[dict[str, Any]],
               retrieved: list[list[dict[str, Any]]] | None, cfg: dict[str, Any]
               ) -> tuple[dict[str, Any], list[float | None]]:
    """The grounding entry, naming what it was computed as (`metric`: grounding_spans or
    grounding_sentences), and its per-example scores."""
    g = cfg.get("grounding") or {}
    kind = g.get("kind") or "sentences"
    if kind == "spans":
        index = passage_index(passages, "passages.jsonl")
        entry, scores = span_grounding(preds, index, g, cfg.get("true_nli") or {})
    elif kind == "sentences":
        entry, scores = grounding(hyps, retrieved, g)
    else:
        raise ValueError(f"metrics.grounding.kind: {kind!r} is not one of ['sentences', 'spans']")
    return {**entry, "metric": f"grounding_{kind}"}, scores


def knowledge_metrics(
    predictions: list[dict[str, Any]],
    references: list[dict[str, Any]],
    passages: list[dict[str, Any]],
    cfg: dict[str, Any],
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(metrics, per-example scores) of a knowledge run; see repro.metrics.kilt and
    repro.metrics.alce for the rules. Every metric scores the output as the official evaluation
    cleans it (repro.metrics.alce.clean_output), except the sentence-level grounding.

    cfg: kilt_task, knowledge_metrics {correctness, retrieval, page_match}, grounding {...},
    true_nli {...}, metrics (subset). Entries: {"value", ...}, {"skipped": why} (could not
    run) or {"skipped": why, "not_applicable": true} (not a metric of this dataset; never an
    error under metrics.strict). Per-example scores: {"ids", "scores": {metric: [x100 or None
    where the example does not count]}} in reference order, for every metric with a value.
    """
    wanted = _wanted("knowledge", cfg)
    kind, correctness, retrieval, page_match = metric_choice(cfg)
    preds = align(predictions, references)
    hyps = [_hypothesis(p) or "" for p in preds]
    outs = [alce.clean_output(h) for h in hyps]
    answers = [_gold_answers(r) for r in references]
    sets = [_evidence_sets(r, page_match) for r in references]
    retrieved = _all_retrieved(preds, passages)
    page_of = {p["id"]: _page(p, page_match) for p in passages}
    rows = [kilt.example_scores(o, a, s, None if retrieved is None else retrieved[i], page_of)
            for i, (o, a, s) in enumerate(zip(outs, answers, sets, strict=True))]
    per = {m: [r[m] for r in rows] for m in rows[0]} if rows else {}
    unanswerable = sum(not a for a in answers)
    no_prov = sum(not any(s) for s in sets)
    no_answer = "no example has a gold answer" if references else "no examples"
    no_ret = "predictions have no 'retrieved' passages (run without retrieval)"
    sig = f"kilt|task={kind}|norm=squad|agg=max-over-answers"
    out: dict[str, dict[str, Any]] = {}
    for m in kilt.DOWNSTREAM_METRICS:
        if m not in kilt.TASK_DOWNSTREAM[kind]:
            why = (f"not a KILT metric of kilt_task {kind} "
                   f"({', '.join(kilt.TASK_DOWNSTREAM[kind])})")
            out[m] = out[f"kilt_{m}"] = not_applicable(why)
            continue
        out[m] = _entry(per.get(m, []), sig, no_answer, unanswerable=unanswerable)
        out[f"kilt_{m}"] = (not_applicable(no_ret) if retrieved is None else _entry(
            per.get(f"kilt_{m}", []), f"{sig}|credit=r_precision==1", no_answer,
            unanswerable=unanswerable))
    out["answer_in_output"] = _entry(
        per.get("answer_in_output", []), "cosup-answer_em|norm=squad|substring|unanswerable=0",
        "no examples", unanswerable=unanswerable)
    alce_out, alce_per = _alce_metrics(outs, references, correctness, cfg)
    out.update(alce_out)
    per.update(alce_per)
    rk = f"recall_at_{kilt.RECALL_K}"
    if retrieval == "none":
        why = ("datasets.<name>.knowledge_metrics.retrieval is none: the official evaluation "
               "scores retrieval for the KILT sets only (eval_metric.py 1596-1619)")
        out.update({m: not_applicable(why) for m in RETRIEVAL_METRICS})
        out["retrieval"] = {**not_applicable(why), "metric": "none"}
    elif retrieved is None:  # (the kilt_* scores: above)
        out.update({m: not_applicable(no_ret) for m in ("support_exist", "r_precision", rk,
                                                     "answer_in_retrieved")})
    else:
        rsig = f"kilt|page={page_match}|empty-provenance=0"
        out["r_precision"] = _entry(per["r_precision"], rsig, "no examples", no_provenance=no_prov)
        out[rk] = _entry(per[rk], rsig, "no examples", no_provenance=no_prov)
        out["support_exist"] = _entry(per["support_exist"],
                                      f"cosup-support_exist|page={page_match}|"
                                      "empty-provenance=left-out",
                                      "no example has gold provenance", no_provenance=no_prov)
        out["answer_in_retrieved"] = _entry(per["answer_in_retrieved"],
                                            "cosup-rev.support_em|raw-substring|title :: text",
                                            no_answer, unanswerable=unanswerable)
    out["correctness"] = _alias(out, correctness, "correctness")
    per["correctness"] = per.get(correctness, [])
    if retrieval != "none":
        out["retrieval"] = _alias(out, retrieval, "retrieval")
        per["retrieval"] = per.get(retrieval, [])
    if "grounding" in wanted:
        out["grounding"], per["grounding"] = _grounding(preds, hyps, passages, retrieved, cfg)
    metrics = {m: out[m] for m in TASK_METRICS["knowledge"] if m in wanted}
    scores = {m: [None if v is None else 100.0 * v for v in per[m]] for m in metrics
              if "value" in metrics[m] and per.get(m)}
    return metrics, {"ids": [r["id"] for r in references], "scores": scores}



def evaluate_files(
    task: str,
    predictions_path: str | os.PathLike[str],
    references_path: str | os.PathLike[str],
    cfg: dict[str, Any],
    passages_path: str | os.PathLike[str] | None = None,
    comet_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Evaluate jsonl predictions against jsonl references: {"task", "n", "metrics"}.

    Knowledge tasks also read the passages the predictions retrieved from (default:
    passages.jsonl beside the references); translation takes its COMET entry from comet_path
    (the comet rule's output) when given. With cfg["strict"], a metric that cannot run raises
    MetricUnavailable naming cfg["run"] instead of being recorded as skipped."""
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
    result: dict[str, Any] = {"task": task, "n": len(references)}
    if task == "knowledge":
        passages_path = Path(passages_path or Path(references_path).parent / "passages.jsonl")
        passages = read_jsonl(passages_path) if passages_path.is_file() else []
        try:
            result["metrics"], result["per_example"] = knowledge_metrics(
                predictions, references, passages, cfg)
        except DataError as e:
            raise DataError(f"{predictions_path} (passages {passages_path}): {e}") from e
    else:
        comet = read_json(comet_path)["comet"] if comet_path else None
        result["metrics"] = evaluate_task(task, predictions, references, cfg, comet=comet)
    require(result["metrics"], cfg.get("run") or str(predictions_path), bool(cfg.get("strict")))
    if any("warmup" in p for p in predictions):
        by_id = {p["id"]: p for p in predictions}
        ordered = [by_id[r["id"]] for r in references]
        result["analysis"] = warmup_analysis(ordered, references, cfg.get("target_lang"))
    return result
