"""Predictions and gold knowledge records in KILT's file formats, so KILT's scripts can run.

Guess (one line per example): {"id", "output": [{"answer", "provenance": [{"wikipedia_id",
"title", "text", "passage_id"}, ...]}]}, provenance = the retrieved passages in retrieval order.
Gold: {"id", "input", "output": [{"answer": answers[0], "provenance": [...]}, {"answer": a}, ...]}:
the first output holds the record's provenance (one evidence set), further answers follow as
answer-only outputs, which KILT's retrieval metrics ignore.

Page ids: KILT's wikipedia_id is a page id. A passage's page is its `wikipedia_id` field when it
has one (e.g. KILT's 100-word chunks of a page), else its own `id`: the synthetic knowledge
generator (repro.data.synthetic) writes gold provenance with wikipedia_id = the passage id.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repro.io import DataError, align, read_jsonl, write_jsonl

Record = dict[str, Any]


def page_id(passage: Record) -> str:
    """The page (KILT wikipedia_id) of a passage: its `wikipedia_id` field, else its `id`."""
    return str(passage.get("wikipedia_id") or passage["id"])


def passage_index(passages: Sequence[Record], where: str = "passages") -> dict[str, Record]:
    """Passages by id; DataError naming `where` and the line on a bad or repeated passage."""
    index: dict[str, Record] = {}
    for i, p in enumerate(passages, start=1):
        if not isinstance(p, dict) or not all(isinstance(p.get(k), str) for k in
                                              ("id", "title", "text")):
            raise DataError(f"{where}:{i}: a passage needs string id, title and text")
        if p["id"] in index:
            raise DataError(f"{where}:{i}: duplicate passage id {p['id']!r}")
        index[p["id"]] = p
    return index


def retrieved_passages(pred: Record, index: dict[str, Record]) -> list[Record] | None:
    """The passages a prediction retrieved, in order; None if it has no "retrieved" field."""
    ids = pred.get("retrieved")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise DataError(f"prediction {pred.get('id')!r}: 'retrieved' is not a list of ids")
    missing = [str(i) for i in ids if str(i) not in index]
    if missing:
        raise DataError(f"prediction {pred.get('id')!r}: retrieved passage id(s) "
                        f"{', '.join(map(repr, missing[:5]))} not in the passages file")
    return [index[str(i)] for i in ids]


def guess_record(pred: Record, index: dict[str, Record], with_text: bool = True) -> Record:
    """One prediction as a KILT guess line (provenance empty without retrieval)."""
    prov = []
    for p in retrieved_passages(pred, index) or []:
        item = {"wikipedia_id": page_id(p), "title": p["title"], "passage_id": p["id"]}
        if with_text:
            item["text"] = p["text"]
        prov.append(item)
    answer = pred.get("hypothesis")
    return {"id": str(pred["id"]), "output": [{"answer": answer or "", "provenance": prov}]}


def gold_record(ref: Record) -> Record:
    """One normalized knowledge record as a KILT gold line."""
    answers = [a for a in ref.get("answers") or [] if isinstance(a, str)]
    prov = [{"wikipedia_id": str(p["wikipedia_id"]), "title": p["title"]}
            for p in ref.get("provenance") or []]
    first: Record = {"answer": answers[0]} if answers else {}
    outputs = [{**first, "provenance": prov}] + [{"answer": a} for a in answers[1:]]
    return {"id": str(ref["id"]), "input": ref.get("source", ""), "output": outputs}


def from_guess(record: Record) -> Record:
    """A KILT guess line back to a prediction {"id", "hypothesis", "retrieved"}."""
    out = check_guess(record)
    return {"id": record["id"], "hypothesis": out["answer"],
            "retrieved": [p.get("passage_id", p["wikipedia_id"]) for p in out["provenance"]]}


def from_gold(record: Record) -> Record:
    """A KILT gold line back to a normalized knowledge record (provenance of all outputs)."""
    check_gold(record)
    answers = [o["answer"] for o in record["output"] if o.get("answer")]
    prov: list[Record] = []
    for o in record["output"]:
        for p in o.get("provenance") or []:
            item = {"wikipedia_id": str(p["wikipedia_id"]).strip(), "title": p["title"]}
            if item not in prov:
                prov.append(item)
    return {"id": record["id"], "source": record["input"], "target": answers[0] if answers
            else "", "answers": answers, "provenance": prov}


def _provenance_ok(prov: Any, rid: Any) -> None:
    if not isinstance(prov, list):
        raise DataError(f"KILT record {rid!r}: provenance is not a list")
    for p in prov:
        if not (isinstance(p, dict) and isinstance(p.get("wikipedia_id"), str)
                and isinstance(p.get("title"), str)):
            raise DataError(f"KILT record {rid!r}: provenance item needs string wikipedia_id "
                            "and title")


def check_guess(record: Record) -> Record:
    """The single output of a guess line, checked as KILT's scripts require; DataError else."""
    rid = record.get("id") if isinstance(record, dict) else None
    outputs = record.get("output") if isinstance(record, dict) else None
    if not isinstance(rid, str) or not isinstance(outputs, list) or len(outputs) != 1:
        raise DataError(f"KILT guess {rid!r}: needs a string id and exactly one output")
    out = outputs[0]
    if not isinstance(out, dict) or not isinstance(out.get("answer"), str):
        raise DataError(f"KILT guess {rid!r}: the output needs a string answer")
    if "provenance" not in out:
        raise DataError(f"KILT guess {rid!r}: the output needs a provenance list")
    _provenance_ok(out["provenance"], rid)
    return out


def check_gold(record: Record) -> None:
    """Check a gold line as KILT's validation does (string input, non-empty output)."""
    rid = record.get("id") if isinstance(record, dict) else None
    if not isinstance(rid, str) or not isinstance(record.get("input"), str):
        raise DataError(f"KILT gold {rid!r}: needs a string id and input")
    outputs = record.get("output")
    if not isinstance(outputs, list) or not outputs:
        raise DataError(f"KILT gold {rid!r}: empty output")
    for o in outputs:
        if not isinstance(o, dict) or ("answer" in o and not isinstance(o["answer"], str)):
            raise DataError(f"KILT gold {rid!r}: answer is not a string")
        if "provenance" in o:
            _provenance_ok(o["provenance"], rid)


def write_kilt_files(
    predictions: Sequence[Record],
    references: Sequence[Record],
    passages: Sequence[Record],
    guess_path: str | os.PathLike[str],
    gold_path: str | os.PathLike[str],
) -> None:
    """Write a KILT guess file (in reference order) and the matching gold file."""
    index = passage_index(passages)
    preds = align(list(predictions), list(references))
    write_jsonl(Path(guess_path), [guess_record(p, index) for p in preds])
    write_jsonl(Path(gold_path), [gold_record(r) for r in references])


def export_run(
    predictions_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    split: str = "test",
    passages_path: str | os.PathLike[str] | None = None,
) -> tuple[Path, Path]:
    """KILT files of a run: predictions.jsonl against data_dir/{split}.jsonl and the passages
    (default data_dir/passages.jsonl), written as out_dir/kilt_guess.jsonl and kilt_gold.jsonl."""
    data = Path(data_dir)
    passages_path = Path(passages_path or data / "passages.jsonl")
    passages = read_jsonl(passages_path) if passages_path.is_file() else []
    out = Path(out_dir)
    guess, gold = out / "kilt_guess.jsonl", out / "kilt_gold.jsonl"
    write_kilt_files(read_jsonl(predictions_path), read_jsonl(data / f"{split}.jsonl"),
                     passages, guess, gold)
    return guess, gold
