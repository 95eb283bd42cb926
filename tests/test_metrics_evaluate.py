"""evaluate_task per task, id alignment, and evaluate_files' file checks."""

import re

import pytest
import sacrebleu
from sklearn.metrics import f1_score

from repro.io import DataError, write_jsonl
from repro.metrics.evaluate import TASK_METRICS, align, evaluate_files, evaluate_task

TRANSLATION_REFS = [
    {"id": "t1", "source": "Der Hund bellt.", "target": "The dog is barking."},
    {"id": "t2", "source": "Es regnet heute.", "target": "It is raining today."},
    {"id": "t3", "source": "Ich mag Tee.", "target": "I like tea."},
]
TRANSLATION_PREDS = [  # shuffled on purpose: aligned by id
    {"id": "t3", "hypothesis": "I like tea."},
    {"id": "t1", "hypothesis": "The dog barks."},
    {"id": "t2", "hypothesis": "Today it rains."},
]
MC_REFS = [
    {"id": i, "source": "q", "target": "", "choices": ["w", "x", "y", "z"], "label": label}
    for i, label in enumerate([0, 1, 2, 3, 1, 2])
]
MC_PREDS = [
    {"id": i, "hypothesis": hyp} for i, hyp in enumerate(["A", "(B)", "D.", "D", "no idea", None])
]


def test_translation():
    out = evaluate_task("translation", TRANSLATION_PREDS, TRANSLATION_REFS, {})
    assert list(out) == TASK_METRICS["translation"]
    hyps = ["The dog barks.", "Today it rains.", "I like tea."]
    refs = [r["target"] for r in TRANSLATION_REFS]
    assert out["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    chrf = sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    assert out["chrf"]["value"] == pytest.approx(chrf)
    assert out["comet"] == {"skipped": "no COMET model configured (set metrics.comet.model)"}


def test_translation_zh_and_subset():
    refs = [{"id": 1, "source": "The cat sat.", "target": "猫坐着。"}]
    preds = [{"id": 1, "hypothesis": "猫坐了。"}]
    out = evaluate_task("translation", preds, refs, {"target_lang": "zh", "metrics": ["bleu"]})
    assert list(out) == ["bleu"] and "tok:zh" in out["bleu"]["signature"]


def test_summarization_rouge_only():
    refs = [{"id": "s1", "source": "doc", "target": "the cat sat on the mat"}]
    preds = [{"id": "s1", "hypothesis": "the cat sat on the mat"}]
    cfg = {"metrics": ["rouge1", "rouge2", "rougeL"], "bertscore": {"model": "/nonexistent/x"}}
    out = evaluate_task("summarization", preds, refs, cfg)
    assert list(out) == ["rouge1", "rouge2", "rougeL"]
    assert all(v["value"] == pytest.approx(100.0) for v in out.values())
    out = evaluate_task("summarization", preds, refs, {"bertscore": {"model": "/nonexistent/x"}})
    assert out["bertscore"] == {"skipped": "BERTScore model path not found: /nonexistent/x"}


def test_multiple_choice():
    out = evaluate_task("multiple_choice", MC_PREDS, MC_REFS, {})
    gold = [r["label"] for r in MC_REFS]
    pred = [0, 1, 3, 3, -1, -1]  # "no idea" and None are unparsable
    assert out["accuracy"]["value"] == pytest.approx(100 * 3 / 6)
    assert out["accuracy"]["unparsed"] == 2
    expected = f1_score(gold, pred, labels=[0, 1, 2, 3], average="macro")
    assert out["macro_f1"]["value"] == pytest.approx(100 * expected)


def test_multiple_choice_letter_beyond_choices():
    refs = [
        {"id": 1, "choices": ["a", "b"], "label": 0},
        {"id": 2, "choices": ["a", "b"], "label": 1},
    ]
    preds = [{"id": 1, "hypothesis": "C"}, {"id": 2, "hypothesis": "B"}]
    out = evaluate_task("multiple_choice", preds, refs, {})
    assert out["accuracy"]["value"] == pytest.approx(50.0) and out["accuracy"]["unparsed"] == 1


def test_knowledge():
    refs = [
        {"id": "k1", "source": "q", "target": "Paris", "answers": ["Paris", "Paris, France"]},
        {"id": "k2", "source": "q", "target": "Barack Obama", "answers": ["Barack Obama"]},
        {"id": "k3", "source": "q", "target": "1969", "answers": ["1969"]},
    ]
    preds = [
        {"id": "k1", "hypothesis": "the city of Paris, France"},
        {"id": "k2", "hypothesis": "Obama"},
        {"id": "k3", "hypothesis": " 1969. "},
    ]
    out = evaluate_task("knowledge", preds, refs, {})
    assert out["exact_match"]["value"] == pytest.approx(100 / 3)
    # k1: "city of paris france" vs "paris france": P 2/4, R 1 -> 2/3; k2: P 1, R 1/2 -> 2/3
    assert out["f1"]["value"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 1) / 3)


def test_unknown_task_and_metric():
    with pytest.raises(ValueError):
        evaluate_task("parsing", [], [], {})
    with pytest.raises(ValueError, match="bertscore"):
        evaluate_task("translation", [], [], {"metrics": ["bertscore"]})


def test_id_mismatch():
    preds = [{"id": "t1", "hypothesis": "x"}, {"id": "zz", "hypothesis": "y"}]
    with pytest.raises(DataError, match=r"1 missing \('t2'\).*1 extra \('zz'\)"):
        align(preds, TRANSLATION_REFS[:2])
    with pytest.raises(DataError, match="2 predictions for 3 references; 1 missing"):
        evaluate_task("translation", TRANSLATION_PREDS[:2], TRANSLATION_REFS, {})
    with pytest.raises(DataError, match="duplicate"):
        align([TRANSLATION_PREDS[0]] * 2, TRANSLATION_REFS[:2])


def test_evaluate_files(tmp_path):
    refs_path, preds_path = tmp_path / "refs.jsonl", tmp_path / "preds.jsonl"
    write_jsonl(refs_path, TRANSLATION_REFS)
    write_jsonl(preds_path, TRANSLATION_PREDS)
    out = evaluate_files("translation", preds_path, refs_path, {"metrics": ["bleu", "chrf"]})
    assert out["task"] == "translation" and out["n"] == 3
    assert set(out["metrics"]) == {"bleu", "chrf"}

    write_jsonl(preds_path, TRANSLATION_PREDS[:2])
    with pytest.raises(
        DataError, match=f"{re.escape(str(preds_path))}: 2 predictions but 3 references"
    ):
        evaluate_files("translation", preds_path, refs_path, {})

    write_jsonl(preds_path, [*TRANSLATION_PREDS[:2], {"id": "t9", "hypothesis": "z"}])
    with pytest.raises(
        DataError, match=f"{re.escape(str(preds_path))}: .*missing \\('t2'\\).*extra \\('t9'\\)"
    ):
        evaluate_files("translation", preds_path, refs_path, {})
