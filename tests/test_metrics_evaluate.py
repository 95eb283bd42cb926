"""evaluate_task per task, id alignment, and evaluate_files' file checks."""

import re

import pytest
import sacrebleu
from sklearn.metrics import f1_score

from repro.io import DataError, align, write_jsonl
from repro.metrics.evaluate import evaluate_files, evaluate_task, knowledge_metrics
from repro.metrics.strict import MetricUnavailable, require
from repro.tasks import TASK_METRICS

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
    assert list(out) == list(TASK_METRICS["translation"])
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


# --- knowledge: KILT metrics per kilt_task, retrieval, counting rules -----------------------

KB_PASSAGES = [
    {"id": "p1", "title": "Paris", "text": "Paris is the capital of France."},
    {"id": "p2", "title": "Lyon", "text": "Lyon is a city in France."},
]
KB_REFS = [
    {"id": "a", "source": "q", "target": "Paris", "answers": ["Paris"],
     "provenance": [{"wikipedia_id": "p1", "title": "Paris"}]},
    {"id": "b", "source": "q", "target": "Lyon", "answers": ["Lyon"],
     "provenance": [{"wikipedia_id": "p2", "title": "Lyon"}]},
    {"id": "c", "source": "q", "target": "", "answers": [], "provenance": []},  # unanswerable
]
KB_PREDS = [
    {"id": "a", "hypothesis": "Paris", "retrieved": ["p1"]},
    {"id": "b", "hypothesis": "it is Lyon", "retrieved": ["p1", "p2"]},
    {"id": "c", "hypothesis": "Lyon", "retrieved": ["p2"]},
]


def test_knowledge_qa_with_retrieval():
    out = evaluate_task("knowledge", KB_PREDS, KB_REFS, {}, passages=KB_PASSAGES)
    assert list(out) == list(TASK_METRICS["knowledge"])
    # a and b answerable (c left out); b: EM 0, F1 2/3 ("it is lyon" vs "lyon": P 1/3, R 1)
    assert out["exact_match"]["value"] == pytest.approx(50.0)
    assert out["exact_match"]["n"] == 2 and out["exact_match"]["unanswerable"] == 1
    assert out["f1"]["value"] == pytest.approx(100 * (1 + 0.5) / 2)
    # not a metric of this kind: not applicable, which strict mode accepts (not a skip)
    assert out["accuracy"]["not_applicable"]
    assert out["accuracy"]["skipped"].startswith("not a KILT metric of kilt_task qa")
    # official answer_em: a, b present; c (unanswerable) counts as 0 -> 2/3
    assert out["answer_in_output"]["value"] == pytest.approx(200 / 3)
    assert out["answer_in_output"]["n"] == 3
    # R-precision over all 3: a 1, b (p1 first, R=1) 0, c (empty provenance) 0
    assert out["r_precision"]["value"] == pytest.approx(100 / 3)
    assert out["r_precision"]["no_provenance"] == 1
    assert out["recall_at_5"]["value"] == pytest.approx(200 / 3)
    assert out["answer_in_retrieved"]["value"] == pytest.approx(100.0)
    # a gold page retrieved by a (p1) and b (p2 second); c has no provenance: left out
    assert out["support_exist"]["value"] == pytest.approx(100.0)
    assert out["support_exist"]["n"] == 2 and out["support_exist"]["no_provenance"] == 1
    assert out["str_em"] == {"skipped": "references have no qa_pairs (ASQA)",
                             "not_applicable": True}
    assert out["claims_nli"] == {"skipped": "references have no claims (ALCE-ELI5)",
                                 "not_applicable": True}
    assert out["kilt_exact_match"]["value"] == pytest.approx(50.0)  # a only
    assert out["kilt_f1"]["value"] == pytest.approx(50.0)
    assert out["correctness"]["metric"] == "answer_in_output"
    assert out["correctness"]["value"] == out["answer_in_output"]["value"]
    assert out["correctness"]["signature"].startswith("correctness=answer_in_output|")
    assert out["retrieval"]["metric"] == "answer_in_retrieved"
    assert out["grounding"] == {
        "skipped": "no NLI model configured (set metrics.grounding.model)",
        "metric": "grounding_sentences"}  # what it stands for, named in the table's footnote


@pytest.mark.parametrize(("kind", "computed", "correctness", "retrieval"), [
    ("fact_check", {"accuracy"}, "answer_in_output", "support_exist"),
    ("dialogue", {"f1", "rougeL"}, "f1", "support_exist"),
    ("long_form", {"rougeL", "f1"}, "rougeL", "support_exist"),
    ("slot_filling", {"accuracy", "exact_match", "f1"}, "answer_in_output",
     "answer_in_retrieved"),
])
def test_knowledge_metrics_per_kilt_task(kind, computed, correctness, retrieval):
    out = evaluate_task("knowledge", KB_PREDS, KB_REFS, {"kilt_task": kind},
                        passages=KB_PASSAGES)
    for m in ("exact_match", "f1", "accuracy", "rougeL"):
        assert ("value" in out[m]) == (m in computed), m
        assert ("value" in out[f"kilt_{m}"]) == (m in computed), m
    assert out["correctness"]["metric"] == correctness
    assert out["retrieval"]["metric"] == retrieval
    if kind == "dialogue":  # b: "it is Lyon" vs "Lyon": P 1/3, R 1 -> 0.5
        assert out["rougeL"]["value"] == pytest.approx(100 * (1 + 0.5) / 2, abs=1e-5)


def test_knowledge_without_retrieval_and_bad_input():
    preds = [{k: v for k, v in p.items() if k != "retrieved"} for p in KB_PREDS]
    out = evaluate_task("knowledge", preds, KB_REFS, {})
    why = "predictions have no 'retrieved' passages (run without retrieval)"
    # skips by design: never an error, also under metrics.strict
    assert out["retrieval"] == {"skipped": why, "not_applicable": True,
                                "metric": "answer_in_retrieved"}
    for m in ("support_exist", "r_precision", "recall_at_5", "answer_in_retrieved",
              "kilt_exact_match", "kilt_f1"):
        assert out[m] == {"skipped": why, "not_applicable": True}, m
    assert out["kilt_accuracy"]["not_applicable"]  # not a qa metric, retrieval or not
    assert out["exact_match"]["value"] == pytest.approx(50.0)
    with pytest.raises(DataError, match=r"1 predictions lack 'retrieved'.*'a'"):
        evaluate_task("knowledge", [preds[0], *KB_PREDS[1:]], KB_REFS, {}, passages=KB_PASSAGES)
    with pytest.raises(DataError, match="'zz'"):
        evaluate_task("knowledge", [{**KB_PREDS[0], "retrieved": ["zz"]}, *KB_PREDS[1:]],
                      KB_REFS, {}, passages=KB_PASSAGES)
    with pytest.raises(ValueError, match="kilt_task 'chat'"):
        evaluate_task("knowledge", KB_PREDS, KB_REFS, {"kilt_task": "chat"})
    only_c = evaluate_task("knowledge", KB_PREDS[2:], KB_REFS[2:], {}, passages=KB_PASSAGES)
    assert only_c["exact_match"] == {"skipped": "no example has a gold answer"}
    assert only_c["r_precision"]["value"] == 0.0  # counted: empty provenance scores 0


def test_knowledge_files_per_example(tmp_path):
    data = tmp_path / "data"
    write_jsonl(data / "test.jsonl", KB_REFS)
    write_jsonl(data / "passages.jsonl", KB_PASSAGES)
    write_jsonl(tmp_path / "predictions.jsonl", KB_PREDS)
    out = evaluate_files("knowledge", tmp_path / "predictions.jsonl", data / "test.jsonl",
                         {"kilt_task": "qa"})
    per = out["per_example"]
    assert per["ids"] == ["a", "b", "c"]
    assert per["scores"]["exact_match"] == [100.0, 0.0, None]
    assert per["scores"]["r_precision"] == [100.0, 0.0, 0.0]
    assert per["scores"]["correctness"] == per["scores"]["answer_in_output"]
    assert "accuracy" not in per["scores"] and "grounding" not in per["scores"]
    for m, values in per["scores"].items():
        kept = [v for v in values if v is not None]
        assert out["metrics"][m]["value"] == pytest.approx(sum(kept) / len(kept)), m
    (data / "passages.jsonl").unlink()
    with pytest.raises(DataError, match=r"passages.jsonl\).*'p1'"):
        evaluate_files("knowledge", tmp_path / "predictions.jsonl", data / "test.jsonl", {})


def _config_with_knowledge_dataset():
    """config/test.yaml plus a knowledge dataset "kb" decoded by an sft run, validated."""
    from pathlib import Path

    from repro import config as rc

    cfg = rc.load_config(Path(__file__).resolve().parents[1] / "config" / "test.yaml")
    cfg["datasets"]["kb"] = {"task": "knowledge", "source": {"kind": "synthetic",
                                                             "generator": "knowledge"}}
    cfg["experiments"].append({"datasets": ["kb"], "models": ["tiny_t5"],
                               "methods": {"sft": {"default": {}}}})
    rc.validate_config(cfg)
    return cfg


def test_kilt_task_reaches_evaluation_only():
    """datasets.<name>.kilt_task (schema default qa) is in the evaluation params of knowledge
    runs and nowhere else, so editing it reruns only their evaluation."""
    import copy

    from repro import config as rc

    cfg = _config_with_knowledge_dataset()
    assert cfg["datasets"]["kb"]["kilt_task"] == "qa"
    assert cfg["metrics"]["grounding"]["model"] is None
    runs = rc.expand_runs(cfg)
    edited = copy.deepcopy(cfg)
    edited["datasets"]["kb"]["kilt_task"] = "dialogue"
    assert all(rc.train_params(edited, r) == rc.train_params(cfg, r) for r in runs)
    changed = [r.dataset for r in runs if rc.evaluate_params(edited, r)
               != rc.evaluate_params(cfg, r)]
    assert changed == ["kb"]
    kb = next(r for r in runs if r.dataset == "kb")
    assert '"kilt_task":"dialogue"' in rc.evaluate_params(edited, kb)
    other = next(r for r in runs if r.dataset != "kb")
    assert "grounding" not in rc.evaluate_params(cfg, other)


# --- the paper's per-dataset metrics (datasets.<name>.knowledge_metrics) ----------------------

ASQA_PASSAGES = [{"id": "8271514", "title": "Debby Boone", "text": "Debby Boone sang it."}]
ASQA_REFS = [  # the ALCE fixture's question, normalized, and a second one
    {"id": "q1", "source": "Who sang you light up my life?", "target": "Debby Boone",
     "answers": ["Debby Boone", "Joe Brooks", "Joseph Brooks"],
     "qa_pairs": [{"short_answers": ["Debby Boone"]},
                  {"short_answers": ["Joe Brooks", "Joseph Brooks"]}]},
    {"id": "q2", "source": "?", "target": "x", "answers": ["x"],
     "qa_pairs": [{"short_answers": ["Ann"]}, {"short_answers": ["Bo"]}, {"short_answers": []}]},
]
ASQA_PREDS = [
    # cleaned as the official evaluation: "\n" -> " ", "</s>" and "[1" removed
    {"id": "q1", "hypothesis": "Debby Boone[1] sang\nit; Joe Brooks wrote it.</s>",
     "retrieved": ["8271514"]},
    {"id": "q2", "hypothesis": "Ann and Bo.", "retrieved": []},
]
ASQA_CFG = {"kilt_task": "qa", "knowledge_metrics": {"correctness": "str_em",
                                                     "retrieval": "none"}}


def test_asqa_str_em_and_no_retrieval_score():
    out = evaluate_task("knowledge", ASQA_PREDS, ASQA_REFS, ASQA_CFG, passages=ASQA_PASSAGES)
    # q1: both pairs present -> 1; q2: Ann, Bo present, the pair without answers 0 -> 2/3
    assert out["str_em"]["value"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert out["str_hit"]["value"] == pytest.approx(50.0)
    assert out["correctness"]["metric"] == "str_em"
    assert out["correctness"]["value"] == out["str_em"]["value"]
    # ALCE: no retrieval score at all (the official code computes none), not a skip
    assert out["retrieval"]["metric"] == "none" and "not_applicable" in out["retrieval"]
    for m in ("support_exist", "r_precision", "recall_at_5", "answer_in_retrieved",
              "kilt_exact_match"):
        assert out[m]["not_applicable"] and set(out[m]) == {"skipped", "not_applicable"}, m
    metrics, per = knowledge_metrics(ASQA_PREDS, ASQA_REFS, ASQA_PASSAGES, ASQA_CFG)
    assert per["scores"]["str_em"] == [100.0, pytest.approx(200 / 3)]
    assert per["scores"]["correctness"] == per["scores"]["str_em"]
    assert "retrieval" not in per["scores"]
    with pytest.raises(DataError, match="'q2'.*qa_pairs"):
        evaluate_task("knowledge", ASQA_PREDS, [ASQA_REFS[0], {**ASQA_REFS[1], "qa_pairs": []}],
                      ASQA_CFG, passages=ASQA_PASSAGES)


def test_strict_fails_on_skips_and_passes_not_applicable():
    # grounding cannot run (no model): under strict an error naming it and why, instead of a
    # skipped column; not-applicable entries (ALCE has no retrieval score) pass
    out = evaluate_task("knowledge", ASQA_PREDS, ASQA_REFS, ASQA_CFG, passages=ASQA_PASSAGES)
    with pytest.raises(MetricUnavailable, match=r"grounding: no NLI model configured"):
        require(out, "r", strict=True)
    require(out, "r", strict=False)  # without strict: nothing raised
    subset = {m: e for m, e in out.items() if m != "grounding"}
    require(subset, "r", strict=True)
    assert subset["retrieval"]["not_applicable"]


ELI5_REFS = [
    {"id": "e1", "source": "Why does ice float?", "target": "long answer",
     "answers": ["long answer"],
     "claims": ["Ice is less dense than water.", "Ice floats.", "Water boils at 100 degrees."]},
    {"id": "e2", "source": "?", "target": "y", "answers": ["y"], "claims": ["Ice floats."]},
]


def test_alce_eli5_claim_recall(tiny_true_nli):
    from tiny_models import ICE

    from repro.metrics import true_nli as tn

    tn.load_true_nli.cache_clear()
    preds = [{"id": "e1", "hypothesis": ICE}, {"id": "e2", "hypothesis": ""}]
    cfg = {"kilt_task": "long_form", "metrics": ["correctness", "claims_nli", "retrieval"],
           "knowledge_metrics": {"correctness": "claims_nli", "retrieval": "none"},
           "true_nli": {"model": str(tiny_true_nli), "device": "cpu", "batch_size": 2}}
    metrics, per = knowledge_metrics(preds, ELI5_REFS, [], cfg)
    # e1: the model entails 2 of 3 claims; e2 (empty output): 0 of 1 -> (2/3 + 0) / 2
    assert metrics["claims_nli"]["value"] == pytest.approx(100 / 3)
    assert metrics["correctness"]["metric"] == "claims_nli"
    assert per["scores"]["claims_nli"] == [pytest.approx(200 / 3), 0.0]
    missing = {**cfg, "true_nli": {"model": "google/t5_xxl_true_nli_mixture"}}
    metrics, _ = knowledge_metrics(preds, ELI5_REFS, [], missing)
    assert metrics["claims_nli"]["skipped"].startswith("cannot load TRUE NLI model")
    assert metrics["correctness"]["skipped"] == metrics["claims_nli"]["skipped"]
    with pytest.raises(MetricUnavailable, match=r"(?s)correctness: cannot load.*claims_nli:"):
        require(metrics, "r", strict=True)
    tn.load_true_nli.cache_clear()


def test_hotpotqa_support_exist_by_page_title():
    passages = [{"id": "17", "title": "Lyon", "text": "Lyon is a city."},  # psgs_w100-like
                {"id": "18", "title": "Paris", "text": "Paris is big."}]
    refs = [{"id": "h1", "source": "q", "target": "x", "answers": ["x"],
             "provenance": [{"wikipedia_id": "101", "title": "Paris"},
                            {"wikipedia_id": "202", "title": "Lyon"}]},
            {"id": "h2", "source": "q", "target": "y", "answers": ["y"],
             "provenance": [{"wikipedia_id": "303", "title": "Nice"}]}]
    preds = [{"id": "h1", "hypothesis": "x", "retrieved": ["17"]},
             {"id": "h2", "hypothesis": "y", "retrieved": ["17", "18"]}]
    cfg = {"kilt_task": "qa", "knowledge_metrics": {"retrieval": "support_exist",
                                                    "page_match": "title"}}
    out = evaluate_task("knowledge", preds, refs, cfg, passages=passages)
    # h1: Lyon is a gold page -> 1; h2: Lyon, Paris, gold Nice -> 0
    assert out["retrieval"]["metric"] == "support_exist"
    assert out["retrieval"]["value"] == pytest.approx(50.0)
    assert "page=title" in out["support_exist"]["signature"]
    # R-precision stays beside it: h1 R=2, first 2 distinct pages {Lyon}: 1/2; h2: 0
    assert out["r_precision"]["value"] == pytest.approx(25.0)
    by_id = evaluate_task("knowledge", preds, refs, {**cfg, "knowledge_metrics": {
        "retrieval": "support_exist"}}, passages=passages)
    assert by_id["support_exist"]["value"] == 0.0  # passage ids are not wikipedia ids
    with pytest.raises(ValueError, match=r"knowledge_metrics\.page_match: 'url'"):
        evaluate_task("knowledge", preds, refs, {"knowledge_metrics": {"page_match": "url"}},
                      passages=passages)
    with pytest.raises(ValueError, match=r"knowledge_metrics\.correctness: 'bleu'"):
        evaluate_task("knowledge", preds, refs, {"knowledge_metrics": {"correctness": "bleu"}},
                      passages=passages)


def test_span_grounding_in_the_knowledge_path(monkeypatch, tiny_true_nli):
    import re as _re

    from repro.metrics import grounding as gr
    from repro.metrics import true_nli as tn

    monkeypatch.setattr(gr, "_sentence_splitter", lambda: (
        lambda t: [x for x in _re.split(r"(?<=[.!?])\s+", t.strip()) if x], "punkt"))
    tn.load_true_nli.cache_clear()
    passages = [{"id": "p1", "title": "Paris", "text": "Paris is in France."},
                {"id": "p2", "title": "Lyon", "text": "Lyon is a city."}]
    refs = [{"id": "a", "source": "q", "target": "Paris", "answers": ["Paris"],
             "provenance": [{"wikipedia_id": "p1", "title": "Paris"}]},
            {"id": "b", "source": "q", "target": "Lyon", "answers": ["Lyon"],
             "provenance": [{"wikipedia_id": "p2", "title": "Lyon"}]}]
    preds = [{"id": "a", "hypothesis": "Paris is in France. Lyon is a city.",
              "raw_output": "[Ret] Paris :: Paris is in France. [Cs] Paris is in France. [Ce] "
                            "[Ret] Paris :: Paris is in France. [Cs] Lyon is a city. [Ce]",
              "retrieved": ["p1", "p1"],
              "spans": [{"text": "Paris is in France.", "passage_id": "p1"},
                        {"text": "Lyon is a city.", "passage_id": "p1"}]},
             {"id": "b", "hypothesis": "Lyon.", "raw_output": "Lyon.", "retrieved": [],
              "spans": []}]
    cfg = {"kilt_task": "qa", "grounding": {"kind": "spans"},
           "true_nli": {"model": str(tiny_true_nli), "device": "cpu"}}
    metrics, per = knowledge_metrics(preds, refs, passages, cfg)
    # a: Paris|Paris 1, Lyon|Paris 0 -> 1/2; b: no span, skipped
    assert metrics["grounding"]["value"] == pytest.approx(50.0)
    assert metrics["grounding"]["n"] == 1 and metrics["grounding"]["no_span"] == 1
    assert metrics["grounding"]["metric"] == "grounding_spans"
    assert per["scores"]["grounding"] == [50.0, None]
    from repro.metrics.autoais import parse_raw_output
    assert [{k: s[k] for k in ("text", "passage_id")}
            for s in parse_raw_output(preds[0]["raw_output"], preds[0]["retrieved"])
            ] == preds[0]["spans"]  # the decoder's spans read back the official way
    with pytest.raises(ValueError, match="metrics.grounding.kind: 'words'"):
        knowledge_metrics(preds, refs, passages, {**cfg, "grounding": {"kind": "words"}})
    tn.load_true_nli.cache_clear()


def test_knowledge_metrics_and_true_nli_reach_the_right_evaluations():
    import copy

    from repro import config as rc

    cfg = _config_with_knowledge_dataset()
    assert cfg["datasets"]["kb"]["knowledge_metrics"] == {"page_match": "wikipedia_id"}
    runs = rc.expand_runs(cfg)
    edited = copy.deepcopy(cfg)
    edited["datasets"]["kb"]["knowledge_metrics"]["correctness"] = "str_em"
    edited["metrics"]["true_nli"]["model"] = "google/t5_xxl_true_nli_mixture"
    assert all(rc.train_params(edited, r) == rc.train_params(cfg, r) for r in runs)
    assert all(rc.dataset_params(edited, d, "source") == rc.dataset_params(cfg, d, "source")
               for d in cfg["datasets"])
    changed = {r.dataset for r in runs if rc.evaluate_params(edited, r)
               != rc.evaluate_params(cfg, r)}
    # metrics.true_nli reruns the knowledge evaluations only; knowledge_metrics only kb's
    assert changed == {r.dataset for r in runs if r.task == "knowledge"}
    assert any(r.task != "knowledge" for r in runs)
    kb = next(r for r in runs if r.dataset == "kb")
    other = next(r for r in runs if r.task == "knowledge" and r.dataset != "kb")
    assert '"correctness"' not in rc.evaluate_params(edited, other)
    assert '"correctness":"str_em"' in rc.evaluate_params(edited, kb)
    bad = copy.deepcopy(cfg)
    bad["datasets"]["kb"]["knowledge_metrics"] = {"retrieval": "mrr"}
    with pytest.raises(Exception, match="mrr"):
        rc.validate_config(bad)
