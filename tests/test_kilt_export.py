"""KILT guess/gold files: round trips, KILT's input checks, page ids of the synthetic data."""

import json

import pytest

from repro.data.synthetic import generate
from repro.io import DataError, read_jsonl, write_jsonl
from repro.metrics.evaluate import knowledge_metrics
from repro.metrics.kilt_export import (
    check_gold,
    check_guess,
    export_run,
    from_gold,
    from_guess,
    gold_record,
    guess_record,
    page_id,
    passage_index,
    write_kilt_files,
)

PASSAGES = [
    {"id": "P1", "title": "Paris", "text": "Paris is the capital of France."},
    {"id": "12_3", "wikipedia_id": "12", "title": "Lyon", "text": "Lyon is a city."},
]
REFS = [
    {"id": "q1", "source": "capital of france?", "target": "Paris", "answers": ["Paris", "Paname"],
     "provenance": [{"wikipedia_id": "P1", "title": "Paris"}]},
    {"id": "q2", "source": "unanswerable", "target": "", "answers": [], "provenance": []},
]
PREDS = [
    {"id": "q2", "hypothesis": None, "retrieved": []},
    {"id": "q1", "hypothesis": "Paris", "retrieved": ["12_3", "P1"], "decode_seconds": 0.1},
]


def test_page_id():
    assert page_id(PASSAGES[0]) == "P1" and page_id(PASSAGES[1]) == "12"


def test_guess_and_gold_records_round_trip():
    index = passage_index(PASSAGES)
    guess = guess_record(PREDS[1], index)
    assert guess == {"id": "q1", "output": [{"answer": "Paris", "provenance": [
        {"wikipedia_id": "12", "title": "Lyon", "passage_id": "12_3", "text": "Lyon is a city."},
        {"wikipedia_id": "P1", "title": "Paris", "passage_id": "P1",
         "text": "Paris is the capital of France."}]}]}
    assert from_guess(guess) == {"id": "q1", "hypothesis": "Paris", "retrieved": ["12_3", "P1"]}
    gold = gold_record(REFS[0])
    assert gold == {"id": "q1", "input": "capital of france?", "output": [
        {"answer": "Paris", "provenance": [{"wikipedia_id": "P1", "title": "Paris"}]},
        {"answer": "Paname"}]}
    assert from_gold(gold) == REFS[0]
    empty = gold_record(REFS[1])
    assert empty["output"] == [{"provenance": []}]  # KILT needs a non-empty output list
    check_gold(empty)
    assert from_gold(empty) == REFS[1]
    assert guess_record(PREDS[0], index)["output"] == [{"answer": "", "provenance": []}]
    assert "text" not in guess_record(PREDS[1], index, with_text=False)["output"][0][
        "provenance"][0]


def test_checks_follow_kilt_scripts():
    with pytest.raises(DataError, match="exactly one output"):
        check_guess({"id": "q", "output": [{"answer": "a"}, {"answer": "b"}]})
    with pytest.raises(DataError, match="string answer"):
        check_guess({"id": "q", "output": [{"answer": 3, "provenance": []}]})
    with pytest.raises(DataError, match="provenance list"):
        check_guess({"id": "q", "output": [{"answer": "a"}]})
    with pytest.raises(DataError, match="wikipedia_id"):
        check_guess({"id": "q", "output": [{"answer": "a", "provenance": [{"wikipedia_id": 3,
                                                                           "title": "t"}]}]})
    with pytest.raises(DataError, match="empty output"):
        check_gold({"id": "q", "input": "x", "output": []})
    with pytest.raises(DataError, match="input"):
        check_gold({"id": "q", "input": None, "output": [{"answer": "a"}]})


def test_bad_passages_and_retrieved_ids():
    with pytest.raises(DataError, match=r"p.jsonl:2: duplicate passage id 'P1'"):
        passage_index([PASSAGES[0], PASSAGES[0]], "p.jsonl")
    with pytest.raises(DataError, match="p.jsonl:1: a passage needs"):
        passage_index([{"id": "x", "title": "t"}], "p.jsonl")
    with pytest.raises(DataError, match=r"'q1'.*'nope' not in the passages file"):
        guess_record({"id": "q1", "hypothesis": "x", "retrieved": ["nope"]},
                     passage_index(PASSAGES))


def test_write_files_in_reference_order(tmp_path):
    write_kilt_files(PREDS, REFS, PASSAGES, tmp_path / "guess.jsonl", tmp_path / "gold.jsonl")
    guess, gold = read_jsonl(tmp_path / "guess.jsonl"), read_jsonl(tmp_path / "gold.jsonl")
    assert [g["id"] for g in guess] == [g["id"] for g in gold] == ["q1", "q2"]
    for g in guess:
        check_guess(g)
    for g in gold:
        check_gold(g)
    # what KILT's scripts compare: string ids, unique, one answer per guess
    assert len({g["id"] for g in gold}) == len(gold)
    assert all(json.loads(json.dumps(g)) == g for g in guess)


def test_export_run(tmp_path):
    data = tmp_path / "data"
    write_jsonl(data / "test.jsonl", REFS)
    write_jsonl(data / "passages.jsonl", PASSAGES)
    write_jsonl(tmp_path / "predictions.jsonl", PREDS)
    guess, gold = export_run(tmp_path / "predictions.jsonl", data, tmp_path / "kilt")
    assert [from_guess(g)["retrieved"] for g in read_jsonl(guess)] == [["12_3", "P1"], []]
    assert [from_gold(g) for g in read_jsonl(gold)] == REFS


def test_synthetic_provenance_matches_retrieved_pages():
    """The synthetic generator's gold wikipedia_id is the passage id, so retrieving the gold
    passage gives R-precision 1 through the page mapping."""
    res = generate("knowledge", {"n_train": 5, "n_validation": 2, "n_test": 10}, 4)
    refs, passages = res.splits["test"], res.passages
    ids = {p["id"] for p in passages}
    assert all(p["wikipedia_id"] in ids for r in refs for p in r["provenance"])
    preds = [{"id": r["id"], "hypothesis": r["target"],
              "retrieved": [r["provenance"][0]["wikipedia_id"]]} for r in refs]
    metrics, _ = knowledge_metrics(preds, refs, passages, {})
    assert metrics["r_precision"]["value"] == 100.0
    assert metrics["kilt_exact_match"]["value"] == 100.0
    guess = guess_record(preds[0], passage_index(passages))
    assert guess["output"][0]["provenance"][0]["wikipedia_id"] == \
        refs[0]["provenance"][0]["wikipedia_id"]
