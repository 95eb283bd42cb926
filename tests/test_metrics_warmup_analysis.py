"""Warmup analysis against hand counts."""

import pytest

from repro.io import write_jsonl
from repro.metrics.evaluate import evaluate_files
from repro.metrics.warmup_analysis import is_phrase, per_example, warmup_analysis, words


def test_words_and_phrases():
    assert words("The Cat, sat!") == ["the", "cat", "sat"]
    assert words("我爱猫。", "zh") == ["我", "爱", "猫"]
    assert is_phrase(["cat", "sat"], ["the", "cat", "sat", "down"])
    assert not is_phrase(["sat", "cat"], ["the", "cat", "sat"])


def test_per_example_and_aggregates():
    preds = [{"warmup": "cat sat", "separator_found": True},   # overlap 1, phrase
             {"warmup": "dog cat", "separator_found": True},   # overlap 1/2, not phrase
             {"warmup": "", "separator_found": False},          # empty
             {"warmup": "bird", "separator_found": False}]      # overlap 0
    refs = [{"target": "the cat sat"}, {"target": "a cat"}, {"target": "x"}, {"target": "y z"}]
    rows = per_example([p["warmup"] for p in preds], [r["target"] for r in refs])
    assert [r["overlap"] for r in rows] == [1.0, 0.5, None, 0.0]
    a = warmup_analysis(preds, refs)
    assert a["warmup_word_overlap"]["value"] == pytest.approx(100 * 1.5 / 3)
    assert a["warmup_exact_phrase"]["value"] == pytest.approx(100 / 3)
    assert a["warmup_no_separator"]["value"] == pytest.approx(50.0)
    assert a["warmup_empty"]["value"] == pytest.approx(25.0)


def test_all_empty_is_skipped_not_zero():
    a = warmup_analysis([{"warmup": "", "separator_found": True}], [{"target": "a"}])
    assert "skipped" in a["warmup_word_overlap"]


def test_evaluate_files_adds_analysis_for_warmup_runs(tmp_path):
    refs = [{"id": "a", "source": "s", "target": "the cat"}, {"id": "b", "source": "s",
                                                             "target": "a dog"}]
    preds = [{"id": "b", "hypothesis": "a dog", "warmup": "dog", "separator_found": True},
             {"id": "a", "hypothesis": "the cat", "warmup": "cow", "separator_found": True}]
    write_jsonl(tmp_path / "p.jsonl", preds)
    write_jsonl(tmp_path / "r.jsonl", refs)
    cfg = {"metrics": ["bleu", "chrf"]}
    out = evaluate_files("translation", tmp_path / "p.jsonl", tmp_path / "r.jsonl", cfg)
    assert out["analysis"]["warmup_word_overlap"]["value"] == pytest.approx(50.0)
    write_jsonl(tmp_path / "p2.jsonl", [{k: v for k, v in p.items() if k != "warmup"}
                                        for p in preds])
    assert "analysis" not in evaluate_files("translation", tmp_path / "p2.jsonl",
                                            tmp_path / "r.jsonl", cfg)
