"""Accuracy / macro-F1 against hand computation and sklearn, with unparsable predictions."""

import pytest
from sklearn.metrics import accuracy_score, f1_score

from repro.io import DataError
from repro.metrics.classification import _letter_to_index, accuracy_macro_f1, parse_choice


def test_hand_computed():
    gold = [0, 0, 1, 1, 2]
    pred = [0, 1, 1, None, 2]
    out = accuracy_macro_f1(pred, gold, num_classes=4)
    assert out["accuracy"]["value"] == pytest.approx(60.0)
    assert out["accuracy"]["unparsed"] == 1
    # class 0: tp1 fp0 fn1 -> 2/3; class 1: tp1 fp1 fn1 -> 1/2; class 2: tp1 -> 1
    assert out["macro_f1"]["value"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)
    assert out["macro_f1"]["classes"] == 3  # class 3 absent from gold and predictions


@pytest.mark.parametrize(
    "pred,gold",
    [
        ([0, 1, 2, 3, 1, 0, 2, 2], [0, 1, 2, 3, 0, 0, 1, 2]),
        ([None, 1, None, 3, 1, 0, 3, 2], [0, 1, 2, 3, 0, 0, 1, 2]),
        ([3, 3, None, None], [0, 1, 2, 0]),  # predicted-only class 3 counts, as in sklearn
    ],
)
def test_matches_sklearn(pred, gold):
    out = accuracy_macro_f1(pred, gold, num_classes=4)
    sk_pred = [-1 if p is None else p for p in pred]
    labels = sorted(set(gold) | {p for p in pred if p is not None})
    assert out["accuracy"]["value"] == pytest.approx(100 * accuracy_score(gold, sk_pred))
    sk_f1 = f1_score(gold, sk_pred, labels=labels, average="macro", zero_division=0)
    assert out["macro_f1"]["value"] == pytest.approx(100 * sk_f1)
    if None not in pred:
        assert out["macro_f1"]["value"] == pytest.approx(
            100 * f1_score(gold, pred, average="macro")
        )


def test_errors_and_empty():
    with pytest.raises(DataError):
        accuracy_macro_f1([0], [0, 1], 2)
    with pytest.raises(DataError):
        accuracy_macro_f1([5], [0], 2)
    assert accuracy_macro_f1([], [], 4)["accuracy"] == {"skipped": "no examples"}


@pytest.mark.parametrize(
    "s,idx",
    [
        ("B", 1),
        (" B. ", 1),
        ("(B)", 1),
        ("B) a dog", 1),
        ("C: x", 2),
        ("H", 7),
        ("A\n", 0),
        ("I", None),
        ("Because", None),
        ("b", None),
        ("", None),
        ("The answer", None),
        (None, None),
    ],
)
def test_letter_to_index(s, idx):
    assert _letter_to_index(s) == idx


def test_parse_choice_range():
    assert parse_choice("D", 4) == 3
    assert parse_choice("E", 4) is None
    assert parse_choice(None, 4) is None
