"""Co-supervision training instances, and the converter from the official (Self-RAG derived)
training data to normalized knowledge records + passages.

A training instance is {"id", "source", "output", "evidence"}: `output` is the text Gen must
produce, with one NSP marker (`[NSP]`) at each retrieval point, and `evidence[j]` is the id of
the passage linked to the j-th marker. At encoding time the passage is inserted after its marker
between delimiters (`[NSP] <p>passage</p> rest of the output`; see repro.methods.cosup).

Normalized knowledge records may carry the instance directly in two extra fields,
`cosup_output` (text with markers) and `evidence` (passage ids); `instance_from_record` uses
them when present, and otherwise builds "[NSP] <target>" linked to the first provenance passage
found in passages.jsonl (the synthetic knowledge task, KILT-style records).

Official format (kaist-ai/ntp_nsp_cosupervision_train, read through the spec notes §1.8):
parallel fields `input` (the prompt, used verbatim as the source), `output` (the target, with a
placeholder `[k_<id>]` where passage <id> is retrieved), `evidence` (the ids whose placeholders
become retrieval points, in output order) and `ids2text.json` mapping "[k_<id>]" to the passage
text. Optional fields (input_ids, hard_negs) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from repro.io import DataError

NSP_TOKEN = "[NSP]"
PLACEHOLDER = re.compile(r"\[k_([^\]\s]+)\]")


def instance_from_record(rec: dict[str, Any], passage_ids: set[str] | Mapping[str, Any]
                         ) -> dict[str, Any] | None:
    """The training instance of a normalized record, or None if no linked passage exists."""
    if "cosup_output" in rec:
        output, evidence = rec["cosup_output"], list(rec.get("evidence") or [])
        if output.count(NSP_TOKEN) != len(evidence):
            raise DataError(f"record {rec.get('id')!r}: {output.count(NSP_TOKEN)} {NSP_TOKEN} "
                            f"markers in cosup_output but {len(evidence)} evidence ids")
        unknown = [e for e in evidence if e not in passage_ids]
        if unknown:
            raise DataError(f"record {rec.get('id')!r}: evidence {unknown[:3]} not in passages")
        if not evidence:
            return None
        return {"id": rec["id"], "source": rec["source"], "output": output, "evidence": evidence}
    for prov in rec.get("provenance") or []:
        pid = prov.get("wikipedia_id")
        if pid in passage_ids:
            return {"id": rec["id"], "source": rec["source"],
                    "output": f"{NSP_TOKEN} {rec['target']}", "evidence": [pid]}
    return None


def instances_from_records(records: Iterable[dict[str, Any]], passages: Mapping[str, Any],
                           where: str = "records") -> tuple[list[dict[str, Any]], int]:
    """(instances, number of records dropped for lack of a linked passage); raises DataError
    naming `where` if nothing is left (the official code also drops no-retrieval instances)."""
    instances, dropped = [], 0
    for rec in records:
        inst = instance_from_record(rec, passages)
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

    Placeholders of evidence ids become `[NSP]` markers; placeholders of other ids are removed
    and counted (`unlinked_placeholders`); rows left without a marker are dropped (`no_retrieval`,
    as the official filter does). Records keep `cosup_output` and `evidence`; their `target`
    is the output without markers and `provenance` lists the evidence passages.
    """
    records: list[dict] = []
    passages: dict[str, dict] = {}
    stats = {"read": 0, "no_retrieval": 0, "unlinked_placeholders": 0}
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
                return NSP_TOKEN
            stats["unlinked_placeholders"] += 1
            return ""

        output = re.sub(r"[ \t]{2,}", " ", PLACEHOLDER.sub(mark, row["output"])).strip()
        if not order:
            stats["no_retrieval"] += 1
            continue
        for pid in order:
            key = f"[k_{pid}]"
            if key not in ids2text:
                raise DataError(f"{where}, row {i}: evidence {key} missing from ids2text")
            passages.setdefault(pid, {"id": pid, "title": "", "text": ids2text[key]})
        target = re.sub(r"\s{2,}", " ", output.replace(NSP_TOKEN, " ")).strip()
        records.append({"id": str(row.get("id", f"official-{i:07d}")), "source": row["input"],
                        "target": target, "answers": [target],
                        "provenance": [{"wikipedia_id": pid, "title": ""} for pid in order],
                        "cosup_output": output, "evidence": order})
    return records, list(passages.values()), stats
