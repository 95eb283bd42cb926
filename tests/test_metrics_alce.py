"""ALCE's STR-EM and claim recall, and the official output cleaning, on hand-computed examples.

Definitions: co-supervision eval_metric.py (10e39b0) 97-116, 373-393, 617-638, 1575-1588;
ALCE eval.py (246c476) 69-85, 158-179, 282-298 and utils.py 12-30.
"""

import pytest
from tiny_models import ICE

from repro.io import DataError
from repro.metrics import alce
from repro.metrics import true_nli as tn

# the ASQA fixture's question (tests/data/alce/asqa_eval_gtr_top100.json): two QA pairs
PAIRS = [["Debby Boone"], ["Joe Brooks", "Joseph Brooks"]]


def test_clean_output_as_the_official_evaluation():
    raw = "Paris[1] is big [2].\n<PAD>Yes</s> a | b] [RELEVANT]ok<|im_end|>"
    # "\n" -> " "; <PAD>, </s>, [RELEVANT], <|im_end|> removed:
    #   "Paris[1] is big [2]. Yes a | b] ok"
    # remove_citations: " [2" -> "", "[1" -> "", " |" -> "", "]" -> ""
    assert alce.clean_output(raw) == "Paris is big. Yes a b ok"
    assert alce.remove_citations("A [1][2]. B[3]") == "A. B"


def test_exact_presence_official_quirks():
    assert alce.exact_presence(["Debby Boone"], "sung by DEBBY BOONE!")
    assert not alce.exact_presence(["Debby Boone"], "Debby-Boone")  # "debbyboone"
    assert alce.exact_presence(["The"], "")  # normalizes to "": in every output (official)
    assert not alce.exact_presence([], "anything")


@pytest.mark.parametrize(("output", "em", "hit"), [
    # pair 1 present, pair 2 absent: (1 + 0) / 2
    ("The 1977 song was sung by Debby Boone.", 0.5, 0.0),
    # both pairs; pair 2 has two short answers present (a tie) and still counts once
    ("Debby Boone sang it; Joseph Brooks (Joe Brooks) wrote it.", 1.0, 1.0),
    ("", 0.0, 0.0),  # empty output
    ("Joe Brooks", 0.5, 0.0),
])
def test_str_em_hand_numbers(output, em, hit):
    assert alce.str_em(output, PAIRS) == (em, hit)


def test_str_em_unanswerable_pair_and_bad_references():
    # a QA pair without short answers can never be matched: (1 + 0) / 2
    assert alce.str_em("Debby Boone", [["Debby Boone"], []]) == (0.5, 0.0)
    assert alce.qa_pairs_of({"id": "q", "qa_pairs": [{"short_answers": ["a"]}]}) == [["a"]]
    with pytest.raises(DataError, match="'q9'.*non-empty 'qa_pairs'"):
        alce.qa_pairs_of({"id": "q9", "qa_pairs": []})  # official: mean of nothing = NaN
    with pytest.raises(DataError, match="'q9'.*short_answers"):
        alce.qa_pairs_of({"id": "q9", "qa_pairs": [{"question": "?"}]})
    with pytest.raises(DataError, match="'e1'.*claims"):
        alce.claims_of({"id": "e1", "claims": []})  # official: division by zero


def test_claim_recall_with_a_stub_judge():
    calls = []

    def judge(premises, hypotheses, ids):  # entailed when every word of the claim is there
        calls.extend(zip(premises, hypotheses, ids, strict=True))
        return [set(h.lower().strip(".").split()) <= set(p.lower().replace(".", "").split())
                for p, h in zip(premises, hypotheses, strict=True)]

    outputs = ["ice floats on water.", ""]
    claims = [["Ice floats.", "Water floats.", "Ice sinks."], ["Ice floats."]]
    # example 1: 2 of 3 claims entailed; example 2 (empty output): 0 of 1
    assert alce.claim_recall(outputs, claims, ["e1", "e2"], judge) == [
        pytest.approx(2 / 3), 0.0]
    assert [c[2] for c in calls] == ["e1", "e1", "e1", "e2"]
    assert calls[0][:2] == ("ice floats on water.", "Ice floats.")  # premise = the output


def test_claim_recall_with_the_tiny_true_model(tiny_true_nli):
    tn.load_true_nli.cache_clear()
    judge, why = tn.judge_from_config({"model": str(tiny_true_nli), "device": "cpu",
                                       "batch_size": 3})
    assert why is None
    claims = [["Ice is less dense than water.", "Ice floats.", "Water boils at 100 degrees."],
              ["Ice floats."]]
    # the model's answers (tests/tiny_models.TRUE_PAIRS): 1, 1, 0 -> 2/3; "" entails nothing
    assert alce.claim_recall([ICE, ""], claims, ["e1", "e2"], judge) == [
        pytest.approx(2 / 3), 0.0]
    tn.load_true_nli.cache_clear()
