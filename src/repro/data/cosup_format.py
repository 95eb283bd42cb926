"""Co-supervision training instances, and the converter from the official training data to
normalized knowledge records + passages (the converter from Self-RAG's data is
repro.data.selfrag).

A training instance is {"id", "source", "output", "evidence"}: `output` is the text Gen must
produce in the official markup (repro.cosup_markup): a `[Ret]` at each retrieval point, then
(optionally) the passage text, `[Cs]`, the statement grounded in the passage, `[Ce]`;
`evidence[j]` is the id of the passage linked to the j-th `[Ret]`. When the text between a
`[Ret]` and its `[Cs]` is empty, the encoder inserts the passage there (repro.methods.cosup);
when the data already holds it, it is used as it is and nothing is inserted: a passage never
appears twice.

Normalized knowledge records may carry the instance directly in two extra fields,
`cosup_output` (text in that markup) and `evidence` (passage ids); `instance_from_record` uses
them when present, and otherwise builds `[Ret][Cs]<target>[Ce]` linked to the first provenance
passage found in passages.jsonl (the synthetic knowledge task, KILT-style records).

Official format (kaist-ai/ntp_nsp_cosupervision_train, read by utils/dataset_utils.py 10-77
and dataset/generate_dataset.py 358-452): parallel fields `input` (the prompt, used verbatim
as the source), `output` (the target, with a placeholder `[k_<id>]` where passage <id> is
retrieved; the official code replaces the placeholders of `evidence` by `[Ret]`), `evidence`
(those ids) and `ids2text.json` mapping "[k_<id>]" to the passage text. Optional fields
(input_ids, hard_negs) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from repro.cosup_markup import CITE_END, CITE_START, RET, strip_markup
from repro.io import DataError

PLACEHOLDER = re.compile(r"\[k_([^\]\s]+)\]")
PASSAGE_PART = re.compile(re.escape(RET) + r"(.*?)" + re.escape(CITE_START), re.S)


def plain_text(output: str) -> str:
    """An output without its markup and without passage text held between [Ret] and [Cs]."""
    return strip_markup(PASSAGE_PART.sub(f"{RET}{CITE_START}", output))


def inline_passages(output: str) -> list[bool]:
    """Per [Ret] of an output: does the text up to its [Cs] (before the next [Ret]) hold a
    passage?"""
    pieces = output.split(RET)[1:]
    return [CITE_START in p and bool(p.split(CITE_START, 1)[0].strip()) for p in pieces]


def instance_from_record(rec: dict[str, Any], passage_ids: set[str] | Mapping[str, Any],
                         where: str = "records") -> dict[str, Any] | None:
    """The training instance of a normalized record, or None if no linked passage exists."""
    if "cosup_output" in rec:
        output, evidence = rec["cosup_output"], list(rec.get("evidence") or [])
        if output.count(RET) != len(evidence):
            raise DataError(f"{where}: record {rec.get('id')!r}: {output.count(RET)} {RET} "
                            f"retrieval points in cosup_output but {len(evidence)} evidence "
                            "ids")
        unknown = [e for e in evidence if e not in passage_ids]
        if unknown:
            raise DataError(f"{where}: record {rec.get('id')!r}: evidence {unknown[:3]} not in "
                            "passages.jsonl")
        if not evidence:
            return None
        return {"id": rec["id"], "source": rec["source"], "output": output, "evidence": evidence}
    for prov in rec.get("provenance") or []:
        pid = prov.get("wikipedia_id")
        if pid in passage_ids:
            return {"id": rec["id"], "source": rec["source"],
                    "output": f"{RET}{CITE_START}{rec['target']}{CITE_END}", "evidence": [pid]}
    return None


def instances_from_records(records: Iterable[dict[str, Any]], passages: Mapping[str, Any],
                           where: str = "records") -> tuple[list[dict[str, Any]], int]:
    """(instances, number of records dropped for lack of a linked passage); raises DataError
    naming `where` if nothing is left (the official code also drops no-retrieval instances)."""
    instances, dropped = [], 0
    for rec in records:
        inst = instance_from_record(rec, passages, where)
        if inst is None:
            dropped += 1
        else:
            instances.append(inst)
    if not instances:
        raise DataError(f"{where}: no record links to a passage of passages.jsonl (provenance "
                        f"wikipedia_id or evidence); {dropped} records without one")
    return instances, dropped


def convert_official(rows: Iterable[dict[str, Any]], ids2text: Mapping[str, str],
                     where: str = "official data") -> tuple[list[dict], list[dict], dict]:
    """Official rows -> (normalized knowledge records, passages, stats).

    Placeholders of evidence ids become `[Ret]` retrieval points linked to their passage (by
    id, whatever the order of `evidence`); placeholders of other ids are removed and counted
    (`unlinked_placeholders`); rows left without a retrieval point are dropped
    (`no_retrieval`, as the official filter does). In a row with retrieval points, an evidence
    id without a placeholder is an error: its passage would be paired with another point.
    `passages_inline` / `passages_to_insert` count the retrieval points whose passage text the
    output already holds (before `[Cs]`) or not. Records keep `cosup_output` and `evidence`;
    `target` is the output without markup and passage text, `provenance` lists the evidence
    passages.
    """
    records: list[dict] = []
    passages: dict[str, dict] = {}
    stats = {"read": 0, "no_retrieval": 0, "unlinked_placeholders": 0, "retrieval_points": 0,
             "passages_inline": 0, "passages_to_insert": 0}
    for i, row in enumerate(rows):
        stats["read"] += 1
        for key in ("input", "output", "evidence"):
            if key not in row:
                raise DataError(f"{where}, row {i}: missing field {key!r}")
        evidence_ids = {str(e) for e in row["evidence"]}
        order: list[str] = []

        def mark(m: re.Match, evidence_ids=evidence_ids, order=order) -> str:
            if m.group(1) in evidence_ids:
                order.append(m.group(1))
                return RET
            stats["unlinked_placeholders"] += 1
            return ""

        output = re.sub(r"[ \t]{2,}", " ", PLACEHOLDER.sub(mark, row["output"])).strip()
        if not order:
            stats["no_retrieval"] += 1
            continue
        missing = sorted(evidence_ids - set(order))
        if missing:
            raise DataError(f"{where}, row {i}: evidence {missing[:3]} has no [k_<id>] "
                            "placeholder in the output: its retrieval points do not match "
                            "its passages")
        for pid in order:
            key = f"[k_{pid}]"
            if key not in ids2text:
                raise DataError(f"{where}, row {i}: evidence {key} missing from ids2text")
            passages.setdefault(pid, {"id": pid, "title": "", "text": ids2text[key]})
        inline = inline_passages(output)
        stats["retrieval_points"] += len(order)
        stats["passages_inline"] += sum(inline)
        stats["passages_to_insert"] += len(inline) - sum(inline)
        target = plain_text(output)
        records.append({"id": str(row.get("id", f"official-{i:07d}")), "source": row["input"],
                        "target": target, "answers": [target],
                        "provenance": [{"wikipedia_id": pid, "title": ""} for pid in order],
                        "cosup_output": output, "evidence": order})
    return records, list(passages.values()), stats
