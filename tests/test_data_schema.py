"""Record schema checks and the multiple-choice text format."""

import pytest

from repro.data.schema import (
    SPLITS,
    TASKS,
    check_passage,
    check_record,
    letter,
    letter_to_index,
    mc_source,
)


def mc(**kw):
    rec = {"id": "q1", "source": "Q?\nA. x\nB. y", "target": "B", "choices": ["x", "y"],
           "label": 1}
    return {**rec, **kw}


def kn(**kw):
    rec = {"id": "k1", "source": "Who?", "target": "Ana", "answers": ["Ana", "A."],
           "provenance": [{"wikipedia_id": "P1", "title": "Ana"}]}
    return {**rec, **kw}


def test_constants():
    assert TASKS == ("translation", "summarization", "multiple_choice", "knowledge")
    assert SPLITS == ("train", "validation", "test")


def test_basic_fields_and_types():
    ok = {"id": "1", "source": "a", "target": "b"}
    assert check_record(ok, "translation") is None
    assert check_record({**ok, "extra": 3}, "summarization") is None
    assert check_record({"id": "1", "source": "a"}, "translation") == "missing field 'target'"
    assert check_record({**ok, "id": 1}, "translation") == "'id' is not a str"
    assert check_record({**ok, "source": None}, "translation") == "'source' is not a str"
    assert check_record({**ok, "id": ""}, "translation") == "empty id"
    assert check_record(["not", "a", "dict"], "translation") == "record is not an object"
    with pytest.raises(ValueError, match="unknown task"):
        check_record(ok, "parsing")


def test_multiple_choice_checks():
    assert check_record(mc(), "multiple_choice") is None
    assert check_record(mc(label=2), "multiple_choice") == "label out of range"
    assert check_record(mc(label=-1), "multiple_choice") == "label out of range"
    assert check_record(mc(label=True), "multiple_choice") == "'label' is not an int"
    assert check_record(mc(label="1"), "multiple_choice") == "'label' is not an int"
    assert check_record(mc(target="A"), "multiple_choice") == "target is not the letter of label"
    assert check_record(mc(choices=["x"], label=0, target="A"), "multiple_choice").startswith(
        "'choices' has 1 items")
    assert check_record(mc(choices=[str(i) for i in range(9)]), "multiple_choice").startswith(
        "'choices' has 9 items")
    assert check_record(mc(choices=["x", 2]), "multiple_choice") == "'choices' is not a list of str"
    rec = mc()
    del rec["label"]
    assert check_record(rec, "multiple_choice") == "missing field 'label'"


def test_knowledge_checks():
    assert check_record(kn(), "knowledge") is None
    assert check_record(kn(provenance=[]), "knowledge") is None
    assert check_record(kn(answers=[]), "knowledge").startswith("'answers' is not")
    assert check_record(kn(answers="Ana"), "knowledge").startswith("'answers' is not")
    assert check_record(kn(target="A."), "knowledge") == "target is not answers[0]"
    assert check_record(kn(provenance={"wikipedia_id": "P1"}), "knowledge") == (
        "'provenance' is not a list")
    assert check_record(kn(provenance=[{"wikipedia_id": 1, "title": "x"}]), "knowledge")
    rec = kn()
    del rec["provenance"]
    assert check_record(rec, "knowledge") == "missing field 'provenance'"


def test_letters():
    assert [letter(i) for i in range(8)] == list("ABCDEFGH")
    with pytest.raises(ValueError):
        letter(8)
    cases = {"B": 1, " B.": 1, "(B)": 1, "B)": 1, "b": 1, "Answer: D": 3, "The answer is C": 2,
             "A. Ana": 0, "H": 7, "Bx": 1, "Z": None, "": None, "I": None, "hello": None}
    for text, idx in cases.items():
        assert letter_to_index(text) == idx, text
    assert letter_to_index(None) is None
    assert letter_to_index(2) is None


def test_mc_source():
    assert mc_source("Who?", ["Ana", "Bo", "Cy", "Dee"], "Ana is tall.") == (
        "Ana is tall.\nWho?\nA. Ana\nB. Bo\nC. Cy\nD. Dee")
    assert mc_source("Who?", ["x", "y"]) == "Who?\nA. x\nB. y"
    assert mc_source("Who?", ["x", "y"], "") == "Who?\nA. x\nB. y"
    with pytest.raises(ValueError):
        mc_source("Who?", ["x"])


def test_check_passage():
    assert check_passage({"id": "P1", "title": "t", "text": "x"}) is None
    assert check_passage({"id": 1, "title": "t", "text": "x"}) == "'id' is not a str"
    assert check_passage({"id": "P1", "text": "x"}) == "missing field 'title'"
