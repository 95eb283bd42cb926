"""Co-supervision instances from normalized knowledge records, and the official-format
converter (placeholders -> [NSP] markers linked to passages)."""

import pytest

from repro.data.cosup_format import (
    NSP_TOKEN,
    convert_official,
    instance_from_record,
    instances_from_records,
)
from repro.data.schema import check_passage, check_record
from repro.data.synthetic import generate
from repro.io import DataError


def test_synthetic_records_link_their_provenance_passage():
    res = generate("knowledge", {"n_people": 20, "n_companies": 10, "n_train": 30,
                                 "n_validation": 5, "n_test": 5}, 0)
    passages = {p["id"]: p for p in res.passages}
    instances, dropped = instances_from_records(res.splits["train"], passages)
    assert dropped == 0 and len(instances) == 30
    for rec, inst in zip(res.splits["train"], instances, strict=True):
        assert inst["output"] == f"{NSP_TOKEN} {rec['target']}"
        assert inst["evidence"] == [rec["provenance"][0]["wikipedia_id"]]
        assert inst["source"] == rec["source"]


def test_records_without_a_known_passage_are_dropped_or_rejected():
    rec = {"id": "1", "source": "q", "target": "a", "answers": ["a"],
           "provenance": [{"wikipedia_id": "X", "title": "t"}, {"wikipedia_id": "P2", "title": ""}]}
    assert instance_from_record(rec, {"P2"})["evidence"] == ["P2"]  # first provenance found
    assert instance_from_record(rec, {"P9"}) is None
    with pytest.raises(DataError, match="train.jsonl: no record links"):
        instances_from_records([rec], {"P9": {}}, where="train.jsonl")


def test_explicit_cosup_output_is_used_and_checked():
    rec = {"id": "7", "source": "q", "target": "a b", "cosup_output": "[NSP] a [NSP] b",
           "evidence": ["P1", "P2"]}
    inst = instance_from_record(rec, {"P1", "P2"})
    assert inst["output"] == "[NSP] a [NSP] b" and inst["evidence"] == ["P1", "P2"]
    with pytest.raises(DataError, match="'7': 2 \\[NSP\\] markers.*1 evidence"):
        instance_from_record({**rec, "evidence": ["P1"]}, {"P1"})
    with pytest.raises(DataError, match="not in passages"):
        instance_from_record(rec, {"P1"})


def test_convert_official_rows():
    ids2text = {"[k_11]": "Paris is the capital of France.", "[k_12]": "It has the Louvre.",
                "[k_99]": "unused"}
    rows = [
        {"input": "## Input:\n\nWhere is the Louvre?## Output:\n\n",
         "output": "[k_11]It is in Paris. [k_12]The Louvre is there. [k_5]Done.",
         "evidence": [11, 12], "input_ids": [1, 2]},
        {"input": "q2", "output": "no retrieval here", "evidence": []},
    ]
    records, passages, stats = convert_official(rows, ids2text)
    assert stats == {"read": 2, "no_retrieval": 1, "unlinked_placeholders": 1}
    (rec,) = records
    assert rec["cosup_output"] == "[NSP]It is in Paris. [NSP]The Louvre is there. Done."
    assert rec["evidence"] == ["11", "12"]
    assert rec["target"] == "It is in Paris. The Louvre is there. Done."
    assert rec["source"] == rows[0]["input"]
    assert check_record(rec, "knowledge") is None
    assert [p["id"] for p in passages] == ["11", "12"]
    assert passages[0]["text"] == ids2text["[k_11]"]
    assert all(check_passage(p) is None for p in passages)
    inst = instance_from_record(rec, {p["id"] for p in passages})
    assert inst["evidence"] == ["11", "12"] and inst["output"].count(NSP_TOKEN) == 2


def test_convert_official_names_the_bad_row():
    with pytest.raises(DataError, match="row 0: evidence \\[k_3\\] missing from ids2text"):
        convert_official([{"input": "q", "output": "[k_3] a", "evidence": ["3"]}], {})
    with pytest.raises(DataError, match="row 1: missing field 'evidence'"):
        convert_official([{"input": "q", "output": "x", "evidence": []},
                          {"input": "q", "output": "x"}], {})
