"""Revised AutoAIS over [Cs]...[Ce] spans, and the official raw-output parser.

Definitions: co-supervision eval_metric.py (10e39b0) `parse_cs_ce` 640-742 and
`revised_compute_autoais` 744-1002. Hand computations use a stub judge ("entailed" when the
sentence's first word is in the premise) and a sentence split at ". " (the official code uses
NLTK's Punkt, which splits these texts the same way).
"""

import re

import pytest
from tiny_models import P_LYON, P_PARIS

from repro.io import DataError
from repro.metrics import autoais as aa
from repro.metrics import grounding as gr
from repro.metrics import true_nli as tn

PASSAGES = {
    "p1": {"id": "p1", "title": "Paris", "text": "Paris is in France."},
    "p2": {"id": "p2", "title": "Lyon", "text": "Lyon is a city."},
    "p3": {"id": "p3", "title": "Nice", "text": "Nice is by the sea."},
    "p4": {"id": "p4", "title": "Metz", "text": "Metz is in Lorraine."},
}


def split(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def stub(calls=None):
    def judge(premises, hypotheses, ids):
        if calls is not None:
            calls.extend(zip(premises, hypotheses, ids, strict=True))
        return [h.split()[0] in p for p, h in zip(premises, hypotheses, strict=True)]
    return judge


def span(text, pid):
    return {"text": text, "passage_id": pid}


# --- the official parser -------------------------------------------------------------------

# eval_metric.py 1449: the docstring's raw output (a model trained with ctx_truncate)
OFFICIAL_RAW = (
    " [Cs] <PAD> Scott Derrickson is American.  [Ce] [Cs] Scott Derrickson is American.  [Ce] "
    "[Cs] Scott Derrickson is a film director from United States.  [Ce] Scott Derrickson is an "
    "American film director, screenwriter, producer, and author.  [Cs] Scott Derrickson is a "
    "director, screenwriter, producer, and author.  [Ce] Scott Derrickson is a film director "
    "from United States. Scott Derrickson is an American film director, screenwriter, "
    "producer, and author.</s>")


def test_parse_the_official_example():
    spans = aa.parse_raw_output(OFFICIAL_RAW, ["d1", "d2", "d3", "d4"], ctx_truncate=True)
    # split at [Ce]; each piece with a [Cs] keeps the text after it, spaces stripped; the
    # text before the 4th [Cs] and the tail (no [Cs]) are not spans
    assert [s["text"] for s in spans] == [
        "<PAD> Scott Derrickson is American.",
        "Scott Derrickson is American.",
        "Scott Derrickson is a film director from United States.",
        "Scott Derrickson is a director, screenwriter, producer, and author.",
    ]
    assert [s["passage_id"] for s in spans] == ["d1", "d2", "d3", "d4"]
    # read as the paper's default (no ctx_truncate): no [Ret], so no (Ret, Cs, Ce) triple
    assert aa.parse_raw_output(OFFICIAL_RAW, [], ctx_truncate=False) == []
    with pytest.raises(ValueError, match="span 2 has no retrieval"):
        aa.parse_raw_output(OFFICIAL_RAW, ["d1"], ctx_truncate=True)


def test_parse_ret_cs_ce_triples():
    raw = ("Intro. [Ret] Paris :: Paris is in France. [Cs] Paris is in France. [Ce] and "
           "[Ret] Lyon :: Lyon is a city. [Cs]  Lyon is a city [Ce] then [Ret] Nice :: x</s>")
    spans = aa.parse_raw_output(raw, ["p1", "p2", "p3"])
    assert spans == [
        {"text": "Paris is in France.", "passage_id": "p1",
         "document": "Paris :: Paris is in France."},
        {"text": "Lyon is a city", "passage_id": "p2", "document": "Lyon :: Lyon is a city."},
    ]  # the 3rd [Ret] has no [Cs] after it: no span
    with pytest.raises(ValueError, match="3 .Ret. in the raw output but 2 retrieved"):
        aa.parse_raw_output(raw, ["p1", "p2"])


# --- scoring ---------------------------------------------------------------------------------


def test_cited_text_numbers_passages_by_first_appearance():
    text, cited = aa.cited_text([span("Paris is in France.", "p1"), span(" ", "p3"),
                                 span("Lyon is a city", "p2"), span("Paris is big.</s>", "p1")])
    # "." -> "[n]. ", otherwise "[n] "; the empty span still takes number 2; "</s>" removed
    assert text == "Paris is in France[1]. Lyon is a city[3] Paris is big.[1] "
    assert cited == ["p1", "p3", "p2"]


@pytest.mark.parametrize(("spans", "expected"), [
    # two spans, one segment each: premise Paris; "Paris ..." 1, "Lyon ..." 0 -> (1 + 0) / 2
    ([span("Paris is in France.", "p1"), span("Lyon is a city.", "p1")], 0.5),
    # a span without a final "." runs into the next: one sentence citing [1] and [2], premise
    # Paris + Lyon, hypothesis "Paris is in France Lyon is a city." -> 1
    ([span("Paris is in France", "p1"), span("Lyon is a city.", "p2")], 1.0),
    # a two-sentence span: "Lyon is big." (uncited) joins "Nice is far[1]."; the segment is
    # split again: Lyon 1, Nice 0 -> segment 1/2; a second segment "Lyon is a city." 1
    # -> example (1/2 + 1) / 2 = 3/4 (per segment, then per example; not 2/3 per sentence)
    ([span("Lyon is big. Nice is far.", "p2"), span("Lyon is a city.", "p2")], 0.75),
    # the same passage cited again keeps its number: Paris 1, Lyon 1, Nice (premise Paris) 0
    ([span("Paris is in France.", "p1"), span("Lyon is a city.", "p2"),
      span("Nice is big.", "p1")], pytest.approx(2 / 3)),
    # a citation out of range ("[7" in the span text) scores the segment 0
    ([span("Paris is [7] in France.", "p1")], 0.0),
    ([], None),  # no span: skipped (eval_metric.py 834-836)
    ([span("  ", "p1")], None),  # only empty spans: no sentence, skipped
])
def test_autoais_hand_numbers(spans, expected):
    assert aa.autoais_scores([spans], PASSAGES, ["q"], stub(), split) == [expected]


def test_at_most_three_cited_passages():
    spans = [span("Metz x", "p1"), span("Nice y", "p2"), span("Lyon z", "p3"),
             span("Metz w.", "p4")]
    # one sentence citing [1]..[4]; the premise keeps the first 3 (Paris, Lyon, Nice): "Metz"
    # is in none of them -> 0; with 4 passages Metz's is in the premise -> 1
    calls = []
    assert aa.autoais_scores([spans], PASSAGES, ["q"], stub(calls), split, at_most=3) == [0.0]
    assert calls[0][0] == (f"{P_PARIS}\n{P_LYON}\nTitle: Nice\nNice is by the sea.")
    assert calls[0][1] == "Metz x Nice y Lyon z Metz w."
    assert aa.autoais_scores([spans], PASSAGES, ["q"], stub(), split, at_most=4) == [1.0]


def test_prediction_spans_checks():
    preds = [{"id": "a", "spans": [span("x.", "p1")]}, {"id": "b", "spans": []}]
    assert aa.prediction_spans(preds, PASSAGES) == [[span("x.", "p1")], []]
    assert aa.prediction_spans([{"id": "a"}], PASSAGES) is None
    with pytest.raises(DataError, match="1 predictions lack 'spans'.*'b'"):
        aa.prediction_spans([preds[0], {"id": "b"}], PASSAGES)
    with pytest.raises(DataError, match="'a'.*'zz' not in the passages file"):
        aa.prediction_spans([{"id": "a", "spans": [span("x.", "zz")]}], PASSAGES)
    with pytest.raises(DataError, match="'a'.*not a list of"):
        aa.prediction_spans([{"id": "a", "spans": ["x."]}], PASSAGES)


@pytest.fixture
def punkt(monkeypatch):
    """Stand-in for NLTK's trained Punkt (its data cannot be downloaded here)."""
    monkeypatch.setattr(gr, "_sentence_splitter", lambda: (split, "punkt"))


def test_span_grounding_with_the_tiny_true_model(punkt, tiny_true_nli):
    tn.load_true_nli.cache_clear()
    preds = [
        {"id": "a", "spans": [span("Paris is in France.", "p1"), span("Lyon is a city.", "p1")]},
        {"id": "b", "spans": [span("Lyon is a city.", "p2")]},
        {"id": "c", "spans": []},
        {"id": "d", "spans": [span(" ", "p1")]},
    ]
    true_cfg = {"model": str(tiny_true_nli), "device": "cpu", "batch_size": 2}
    entry, scores = aa.span_grounding(preds, PASSAGES, {}, true_cfg)
    # a: Paris|Paris 1, Paris|Lyon 0 -> 1/2; b: Lyon|Lyon 1 -> 1; c, d: no span, skipped
    assert scores == [0.5, 1.0, None, None]
    assert entry["value"] == pytest.approx(75.0)
    assert entry["n"] == 2 and entry["no_span"] == 2
    assert entry["signature"].startswith("cosup-rev.citation_rec|spans|nli=")
    tn.load_true_nli.cache_clear()


def test_span_grounding_skips_with_reasons(monkeypatch, punkt, tmp_path):
    preds = [{"id": "a", "spans": [span("Paris is in France.", "p1")]}]
    assert aa.span_grounding([{"id": "a"}], PASSAGES, {}, {"model": "x"})[0] == {
        "skipped": "predictions carry no 'spans' (decoded without [Cs]...[Ce] markup)"}
    entry, _ = aa.span_grounding(preds, PASSAGES, {}, {})
    assert entry == {"skipped": "no TRUE NLI model configured (set metrics.true_nli.model)"}
    entry, _ = aa.span_grounding(preds, PASSAGES, {}, {"model": str(tmp_path / "none")})
    assert entry["skipped"].startswith("TRUE NLI model path not found")
    entry, _ = aa.span_grounding([{"id": "a", "spans": []}], PASSAGES, {}, {"model": "x"})
    assert "skipped" in entry  # the model is looked for before any example is scored
    monkeypatch.setattr(gr, "_sentence_splitter", lambda: (split, "punkt-untrained"))
    entry, _ = aa.span_grounding(preds, PASSAGES, {}, {"model": "x"})
    assert entry["skipped"].startswith("NLTK's trained Punkt is not installed")
