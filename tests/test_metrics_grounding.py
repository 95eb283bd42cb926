"""Grounding (citation recall with NLI): scoring with a stub, a tiny local BERT NLI, skips."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from repro.metrics import grounding as gr

P1 = {"id": "p1", "title": "Paris", "text": "Paris is in France."}
P2 = {"id": "p2", "title": "Lyon", "text": "Lyon is a city."}
P3 = {"id": "p3", "title": "Nice", "text": "Nice is by the sea."}
P4 = {"id": "p4", "title": "Metz", "text": "Metz is in Lorraine."}


def test_sentences_and_premise():
    assert gr.split_sentences("Paris is in France. It is big! ") == [
        "Paris is in France.", "It is big!"]
    assert gr.split_sentences("  ") == []
    prem = gr.premise([P1, P1, P2, P3, P4], at_most=3)
    assert prem == ("Title: Paris\nParis is in France.\nTitle: Lyon\nLyon is a city.\n"
                    "Title: Nice\nNice is by the sea.")


def test_citation_recall_hand_numbers():
    calls: list[tuple[str, str]] = []

    def entails(premises, hypotheses):  # entailed when the sentence's first word is cited
        calls.extend(zip(premises, hypotheses, strict=True))
        return [h.split()[0] in p for p, h in zip(premises, hypotheses, strict=True)]

    hyps = ["Paris is nice. Lyon too. Rome also.", "Paris!", "", "Metz is far."]
    retrieved = [[P1, P2], [], [P1], [P1, P2, P3, P4]]
    scores = gr.citation_recall(hyps, retrieved, entails, at_most=3, batch_size=2)
    # 2 of 3 sentences; no passage -> 0; no sentence -> left out; Metz beyond 3 passages
    assert scores == [pytest.approx(2 / 3), 0.0, None, 0.0]
    assert len(calls) == 4  # only examples with sentences and passages reach the model


def test_entailment_index():
    assert gr.entailment_index({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}) == 2
    assert gr.entailment_index({"0": "entailment", "1": "not_entailment"}) == 0
    assert gr.entailment_index({0: "LABEL_0", 1: "LABEL_1"}) is None


def _tiny_nli(path, entail_bias: bool, id2label=None) -> str:
    """A tiny BERT classifier whose decision is fixed by its bias (weights zeroed)."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "title", "paris", "is", "in",
             "france", "lyon", "a", "city", ".", ":"]
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    BertTokenizer(str(path / "vocab.txt")).save_pretrained(path)
    id2label = id2label or {0: "contradiction", 1: "neutral", 2: "entailment"}
    cfg = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=16, num_labels=len(id2label),
                     id2label=id2label, label2id={v: k for k, v in id2label.items()})
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[2 if entail_bias else 0] = 5.0
    model.save_pretrained(path)
    return str(path)


def test_tiny_local_nli_model(tmp_path):
    gr.load_nli.cache_clear()
    hyps = ["Paris is in France. Lyon is a city.", "Paris.", ""]
    retrieved = [[P1, P2], [], [P1]]
    yes = _tiny_nli(tmp_path / "yes", entail_bias=True)
    entry, scores = gr.grounding(hyps, retrieved, {"model": yes, "batch_size": 1})
    assert entry["value"] == pytest.approx(50.0)  # mean(1, 0); the empty output left out
    assert entry["n"] == 2 and entry["no_sentence"] == 1
    assert f"nli={yes}" in entry["signature"] and scores == [1.0, 0.0, None]
    no = _tiny_nli(tmp_path / "no", entail_bias=False)
    entry, _ = gr.grounding(hyps, retrieved, {"model": no})
    assert entry["value"] == 0.0  # computed, a real 0: the model never says entailment


def test_skips_never_zero(tmp_path):
    gr.load_nli.cache_clear()
    hyps, ret = ["Paris is in France."], [[P1]]
    assert gr.grounding(hyps, ret, {}) == (
        {"skipped": "no NLI model configured (set metrics.grounding.model)"}, [])
    entry, _ = gr.grounding(hyps, None, {"model": "x/y"})
    assert "no 'retrieved'" in entry["skipped"]
    entry, _ = gr.grounding(hyps, ret, {"model": str(tmp_path / "missing")})
    assert entry == {"skipped": f"NLI model path not found: {tmp_path / 'missing'}"}
    entry, _ = gr.grounding(hyps, ret, {"model": "nobody/no-such-nli-model"})
    assert entry["skipped"].startswith("cannot use NLI model nobody/no-such-nli-model")
    odd = _tiny_nli(tmp_path / "odd", True, id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    entry, _ = gr.grounding(hyps, ret, {"model": odd})
    assert "no single entailment label" in entry["skipped"]
    yes = _tiny_nli(tmp_path / "yes", entail_bias=True)
    entry, scores = gr.grounding([""], [[P1]], {"model": yes})
    assert entry == {"skipped": "no output has a sentence to check"} and scores == [None]
