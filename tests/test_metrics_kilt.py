"""KILT metrics and the co-supervision answer rates on hand-made examples."""

import pytest

from repro.metrics.kilt import (
    RETRIEVAL,
    answer_in_output,
    answer_in_passages,
    clean_answers,
    downstream_scores,
    evidence_rank,
    example_scores,
    mean_x100,
    normalize_answer,
    r_precision,
    recall_at_k,
    rouge_l,
    support_exist,
    token_f1,
)


def test_normalize_and_clean_answers():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("An apple, a day") == "apple day"
    assert clean_answers([" Paris ", "", "  ", "Paris", "France"]) == ["Paris", "France"]


def test_token_f1_kilt_edge_cases():
    # "city of paris france" vs "paris france": P 2/4, R 2/2
    assert token_f1("the city of Paris, France", "Paris France") == pytest.approx(2 / 3)
    assert token_f1("", "x") == 0.0
    assert token_f1("the", "a") == 0.0  # both normalize to nothing: KILT gives 0 (SQuAD 1)


def test_downstream_max_over_answers_and_strict_accuracy():
    s = downstream_scores(" Paris ", ["paris", "Paris, France"])
    assert s["exact_match"] == 1.0 and s["f1"] == 1.0
    assert s["accuracy"] == 0.0  # strict: "Paris" is not a gold string
    assert s["rougeL"] == 0.0  # ROUGE-L is not normalized: "Paris" vs "paris" / "Paris,"
    assert downstream_scores("SUPPORTS", ["SUPPORTS"])["accuracy"] == 1.0
    assert downstream_scores("  ", ["x"]) == dict.fromkeys(s, 0.0)
    with pytest.raises(ValueError):
        downstream_scores("x", [])


def test_rouge_l_as_the_rouge_package():
    # LCS words {the, cat, on, mat} over 5 unique words each side
    assert rouge_l("the cat sat on the mat", "the cat lay on the mat") == pytest.approx(0.8)
    # sentences (split on ".") are matched as a union: order does not matter
    assert rouge_l("a b. c d", "c d. a b") == pytest.approx(1.0)
    # the package keeps an empty word after a trailing ". ": P = 1/2, R = 1
    assert rouge_l("Paris. ", "Paris") == pytest.approx(2 / 3)
    assert rouge_l("", "Paris") == 0.0 and rouge_l("...", "Paris") == 0.0


def test_r_precision_multiple_and_empty_sets():
    assert r_precision(["A", "B", "A", "C"], [["B", "C"]]) == 0.5  # distinct A, B vs R=2
    assert r_precision(["A", "B"], [["B", "C"], ["A"]]) == 1.0  # max over evidence sets
    assert r_precision(["A"], [[]]) == 0.0  # empty provenance
    assert r_precision(["A"], []) == 0.0
    assert r_precision([], [["A"]]) == 0.0


def test_recall_at_k_evidence_sets():
    sets = [["B", "C"], ["A"]]
    # X misses, B leaves set 0 partial, C completes it, A completes set 1
    assert evidence_rank(["X", "B", "C", "A"], sets) == [False, True, True]
    assert recall_at_k(["X", "B", "C", "A"], sets, 1) == 0.0
    assert recall_at_k(["X", "B", "C", "A"], sets, 2) == 0.5
    assert recall_at_k(["X", "B", "C", "A"], sets, 5) == 1.0
    assert recall_at_k(["A"], [["A"], ["A"]], 5) == 1.0  # identical sets count once
    assert recall_at_k(["A"], [["A"], []], 5) == 0.5  # an empty set counts, never completes
    assert recall_at_k([], sets, 5) == 0.0
    with pytest.raises(ValueError):
        recall_at_k(["A"], sets, 0)


def test_answer_rates():
    assert answer_in_output("It was the Eiffel Tower, in Paris.", ["eiffel tower"]) == 1.0
    # official (eval_metric.py 97-116): "The" normalizes to "", which is in every output
    assert answer_in_output("nothing here", ["The"]) == 1.0
    assert answer_in_output("Paris", []) == 0.0  # no answer: 0 (counted by the official code)
    assert answer_in_output("refutes.", ["REFUTES"]) == 1.0
    docs = [{"id": "p1", "title": "Paris", "text": "Capital of France"}]
    assert answer_in_passages(docs, ["paris"]) == 0.0  # raw, case-sensitive
    assert answer_in_passages(docs, ["Paris"]) == 1.0  # the title is part of the passage
    assert answer_in_passages(docs, ["of France"]) == 1.0
    assert answer_in_passages([], ["Paris"]) == 0.0


P1 = {"id": "p1_0", "title": "Paris", "text": "Paris is the capital of France."}
P2 = {"id": "p2_0", "title": "Lyon", "text": "Lyon is a city."}


def test_example_scores_kilt_credit_and_page_map():
    pages = {"p1_0": "101", "p2_0": "202"}
    hit = example_scores("Paris", ["Paris"], [["101"]], [P1, P2], pages)
    assert hit["r_precision"] == 1.0 and hit["kilt_exact_match"] == 1.0
    assert hit["answer_in_retrieved"] == 1.0 and hit["recall_at_5"] == 1.0
    late = example_scores("Paris", ["Paris"], [["101"]], [P2, P1], pages)
    assert late["r_precision"] == 0.0 and late["recall_at_5"] == 1.0
    assert late["exact_match"] == 1.0 and late["kilt_exact_match"] == 0.0
    # without the page map the passage id is the page
    assert example_scores("Paris", ["Paris"], [["p1_0"]], [P1])["r_precision"] == 1.0


def test_example_scores_unanswerable_and_no_retrieval():
    row = example_scores("Paris", [], [["101"]], [P1], {"p1_0": "101"})
    assert row["r_precision"] == 1.0  # retrieval still counts
    assert all(row[m] is None for m in ("exact_match", "f1", "answer_in_retrieved", "kilt_f1"))
    assert row["answer_in_output"] == 0.0  # the official answer_em counts it as 0
    assert row["support_exist"] == 1.0
    row = example_scores("Paris", ["Paris"], [["101"]], None)
    assert row["exact_match"] == 1.0
    assert row["r_precision"] is None and row["kilt_exact_match"] is None
    row = example_scores("Paris", ["Paris"], [[]], [P1])  # empty provenance: 0, counted
    assert row["r_precision"] == 0.0 and row["recall_at_5"] == 0.0
    assert row["support_exist"] is None  # ... but left out of support_exist (official)


def test_mean_x100():
    assert mean_x100([1.0, None, 0.0, 0.5]) == (50.0, 3)
    assert mean_x100([None]) == (None, 0)


def test_support_exist_official_counting():
    # eval_metric.py 1367-1444: any retrieved id among the gold ones (`ref_exist`)
    assert support_exist(["B", "X"], ["A", "B"]) == 1.0
    assert support_exist(["A", "B"], ["A", "B"]) == 1.0  # two gold pages retrieved: still 1
    assert support_exist(["A", "A"], ["A"]) == 1.0  # the same page twice counts once
    assert support_exist(["X"], ["A"]) == 0.0
    assert support_exist([], ["A"]) == 0.0  # nothing retrieved: 0, counted
    assert support_exist(["A"], []) is None  # no gold provenance: left out (1383-1388)
    # the paper's retrieval score per KILT kind (eval_metric.py 1598-1617)
    assert RETRIEVAL["qa"] == "answer_in_retrieved"
    assert {RETRIEVAL[k] for k in ("fact_check", "dialogue", "long_form")} == {"support_exist"}
