"""The co-supervision markup: span parsing as the official post-processing pairs [Ret], [Cs],
[Ce] (run_inference_ntp_nsp.py 299-330), checked on hand-worked strings."""

import pytest

from repro.cosup_markup import cite_triples, parse_spans, strip_markup


def test_one_span_per_retrieval():
    raw = "Intro [Ret] Moscow :: capital [Cs] Moscow is the capital.[Ce] End"
    # positions by hand: "Intro " is 6 characters, so [Ret] at 6; [Cs] after
    # " Moscow :: capital " (6 + 5 + 19 = 30); [Ce] after " Moscow is the capital." (30+4+23)
    assert cite_triples(raw) == [(0, 6, 30, 57)]
    assert parse_spans(raw, ["P7"]) == [{"text": "Moscow is the capital.", "passage_id": "P7"}]


def test_two_spans_map_to_their_own_retrievals():
    raw = "[Ret] A [Cs] one [Ce] and [Ret] B [Cs] two [Ce]"
    assert parse_spans(raw, ["PA", "PB"]) == [{"text": "one", "passage_id": "PA"},
                                              {"text": "two", "passage_id": "PB"}]


def test_official_pairing_rules():
    # a [Ret] with no [Cs] after it pairs with nothing; the next [Ret] takes the [Cs]
    raw = "[Ret] x [Ret] B [Cs] two [Ce]"
    assert [t[0] for t in cite_triples(raw)] == [0]  # the first [Ret] pairs with that [Cs]
    assert parse_spans(raw, ["P0", "P1"]) == [{"text": "two", "passage_id": "P0"}]
    # a [Ret] inside the previous span is skipped (it falls before that span's [Ce])
    raw = "[Ret] A [Cs] one [Ret] two [Ce] three"
    assert [t[0] for t in cite_triples(raw)] == [0]
    # a [Cs] without a [Ce] after it: no span
    assert parse_spans("[Ret] A [Cs] never closed", ["P0"]) == []
    # no markup at all
    assert parse_spans("plain answer", []) == []


def test_retrieval_without_a_passage_gives_no_span():
    raw = "[Ret] [Ret] B [Cs] two [Ce]"
    assert parse_spans(raw, [None, "PB"]) == []  # the pair's [Ret] is the first: nothing there


@pytest.mark.parametrize("text,plain", [
    ("a [Ret] b [Cs] c [Ce] d", "a b c d"),
    ("[Ret][Cs]c[Ce]", "c"),
    ("no markup", "no markup"),
])
def test_strip_markup(text, plain):
    assert strip_markup(text) == plain
