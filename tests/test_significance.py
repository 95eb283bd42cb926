"""Paired bootstrap: agreement with sacrebleu, clear and null cases, per-metric scorers."""

from __future__ import annotations

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from repro.metrics.classification import accuracy_macro_f1
from repro.metrics.evaluate import evaluate_task, knowledge_metrics
from repro.report.significance import (
    DEFAULT_SEED,
    consistent,
    example_scorers,
    macro_f1_scorer,
    mean_scorer,
    paired_bootstrap,
    parse_signature,
    pvalues,
    resample_indices,
    sacrebleu_scorer,
    stored_scorers,
)

WORDS = "the a cat dog sat ran on under mat table red blue big small house tree".split()


def sentences(n: int, seed: int, length: int = 8) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=length)) for _ in range(n)]


def corrupt(refs: list[str], share: float, seed: int) -> list[str]:
    """Replace a share of the words of each reference with random words."""
    rng = np.random.default_rng(seed)
    out = []
    for r in refs:
        words = r.split()
        for i in range(len(words)):
            if rng.random() < share:
                words[i] = str(rng.choice(WORDS))
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def mt_case():
    refs = sentences(60, 0)
    good = corrupt(refs, 0.1, 1)  # close to the references
    bad = corrupt(refs, 0.7, 2)  # far from them
    return refs, good, bad


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_matches_sacrebleu_paired_bootstrap(mt_case, metric, monkeypatch):
    refs, good, bad = mt_case
    monkeypatch.setenv("SACREBLEU_SEED", str(DEFAULT_SEED))
    sb_metric = BLEU() if metric == "bleu" else CHRF(word_order=2)
    sb_metric.corpus_score(good, [refs])
    sig = str(sb_metric.get_signature())
    for base, system in ((bad, good), (good, corrupt(refs, 0.1, 3))):
        _, scores = PairedTest([("base", base), ("sys", system)], {metric: sb_metric}, [refs],
                               test_type="bs", n_samples=200)()
        want = next(v for k, v in scores.items() if k != "System")[1]
        got = paired_bootstrap([sacrebleu_scorer(metric, system, refs, sig)],
                               [sacrebleu_scorer(metric, base, refs, sig)], n_samples=200)
        assert got.p_value == pytest.approx(want.p_value)
        assert got.system == pytest.approx(want.score)


def test_clearly_better_is_significant(mt_case):
    refs, good, bad = mt_case
    r = paired_bootstrap([sacrebleu_scorer("bleu", good, refs)],
                         [sacrebleu_scorer("bleu", bad, refs)])
    assert r.system > r.baseline + 20
    assert r.p_value < 0.01 and r.significant
    assert r.n_examples == 60 and r.n_samples == 1000 and r.n_seeds == 1


def test_identical_systems_are_not_significant(mt_case):
    refs, good, _ = mt_case
    for metric in ("bleu", "chrf"):
        r = paired_bootstrap([sacrebleu_scorer(metric, good, refs)],
                             [sacrebleu_scorer(metric, good, refs)])
        assert r.system == r.baseline
        assert r.p_value > 0.4 and not r.significant  # (count + 1) / (n + 1) with diff 0
    acc = mean_scorer([100.0, 0.0] * 20)
    assert not paired_bootstrap([acc], [acc]).significant


def test_seed_averaged_comparison():
    # per example: system correct on 90%, baseline on 50%; two seeds each
    sys_seeds = [mean_scorer([100.0] * 45 + [0.0] * 5), mean_scorer([100.0] * 44 + [0.0] * 6)]
    base_seeds = [mean_scorer([100.0] * 25 + [0.0] * 25), mean_scorer([0.0] * 25 + [100.0] * 25)]
    r = paired_bootstrap(sys_seeds, base_seeds)
    assert r.system == pytest.approx(89.0) and r.baseline == pytest.approx(50.0)
    assert r.significant and r.n_seeds == 2


def test_small_difference_is_not_significant():
    base = [100.0 * (i % 2) for i in range(40)]
    system = list(base)
    system[0] = 100.0  # one more example right: +2.5 points on 40 examples
    r = paired_bootstrap([mean_scorer(system)], [mean_scorer(base)])
    assert r.system - r.baseline == pytest.approx(2.5)
    assert not r.significant


def test_resampling_is_seeded_and_shared():
    a, b = resample_indices(10, 5, 7), resample_indices(10, 5, 7)
    assert a.shape == (5, 10) and (a == b).all()
    assert not (resample_indices(10, 5, 8) == a).all()


def test_mismatched_sizes_rejected():
    with pytest.raises(ValueError, match="different numbers"):
        paired_bootstrap([mean_scorer([1.0, 2.0])], [mean_scorer([1.0])])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap([], [mean_scorer([1.0])])


def test_macro_f1_scorer_matches_metric():
    gold = [0, 1, 2, 3, 0, 1, 2, 3, 0, 0]
    pred = [0, 1, 1, None, 0, 2, 2, 3, 1, 0]
    want = accuracy_macro_f1(pred, gold, 4)["macro_f1"]["value"]
    s = macro_f1_scorer(pred, gold)
    assert s.score() == pytest.approx(want)
    # each resample equals the metric recomputed on the resampled examples
    idxs = resample_indices(len(gold), 5, 3)
    got = s.score_many(s.stats, idxs)
    for row, value in zip(idxs, got, strict=True):
        ref = accuracy_macro_f1([pred[i] for i in row], [gold[i] for i in row], 4)
        assert value == pytest.approx(ref["macro_f1"]["value"])


def test_parse_signature():
    sig = parse_signature("nrefs:1|case:mixed|eff:no|tok:zh|smooth:exp|version:2.6.0")
    assert sig["tok"] == "zh" and sig["case"] == "mixed"
    assert parse_signature("") == {}


def _records(hyps, refs, **extra):
    preds = [{"id": i, "hypothesis": h} for i, h in enumerate(hyps)]
    references = [{"id": i, "source": "s", "target": r, **{k: v[i] for k, v in extra.items()}}
                  for i, r in enumerate(refs)]
    return preds, references


@pytest.mark.parametrize("task", ["translation", "summarization", "multiple_choice"])
def test_example_scorers_reproduce_reported_metrics(task, mt_case):
    refs, good, _ = mt_case
    refs, good = refs[:20], good[:20]
    extra = {}
    if task == "multiple_choice":
        extra = {"choices": [["w", "x", "y", "z"]] * 20, "label": [i % 4 for i in range(20)]}
        refs = ["ABCD"[i % 4] for i in range(20)]
        good = ["ABCD"[(i * 7) % 4] if i % 3 else "junk" for i in range(20)]
    preds, references = _records(good, refs, **extra)
    cfg = {"bertscore": {"model": None}, "comet": {}}
    reported = evaluate_task(task, preds, references, cfg)
    sigs = {m: v.get("signature", "") for m, v in reported.items()}
    scorers = example_scorers(task, preds[::-1], references, sigs)  # aligned by id
    assert scorers
    for metric, scorer in scorers.items():
        assert scorer.n == 20
        assert consistent(scorer, reported[metric]["value"]), metric
        assert scorer.score() == pytest.approx(reported[metric]["value"], abs=1e-4)


def test_consistent():
    s = mean_scorer([50.0, 60.0])
    assert consistent(s, 55.0) and not consistent(s, 57.0) and not consistent(s, None)


def test_knowledge_scores_are_the_stored_ones(mt_case):
    """Knowledge runs are tested on the per-example scores evaluation stores in metrics.json:
    each one's full-set score is the reported value; none are recomputed from predictions."""
    refs, good, _ = mt_case
    preds, references = _records(good[:20], refs[:20],
                                 answers=[[r.split()[0], r] for r in refs[:20]])
    metrics, per_example = knowledge_metrics(preds, references, [], {})
    scorers = stored_scorers(per_example)
    assert {"exact_match", "f1", "correctness", "answer_in_output"} <= set(scorers)
    for metric, scorer in scorers.items():
        assert scorer.n == 20
        assert scorer.score() == pytest.approx(metrics[metric]["value"], abs=1e-9), metric
    assert example_scorers("knowledge", preds, references) == {}


def test_knowledge_example_without_answers_does_not_count():
    """An example without a gold answer is left out of EM by evaluation (null score). The old
    re-scoring took its `target` as the answer instead, so its score disagreed with the
    reported one and the run was dropped from the test; the stored scores agree."""
    preds = [{"id": 0, "hypothesis": "paris"}, {"id": 1, "hypothesis": "london"},
             {"id": 2, "hypothesis": "x"}]
    refs = [{"id": 0, "source": "q0", "target": "paris", "answers": ["paris"]},
            {"id": 1, "source": "q1", "target": "rome", "answers": ["rome"]},
            {"id": 2, "source": "q2", "target": "x", "answers": []}]
    metrics, per_example = knowledge_metrics(preds, refs, [], {})
    assert per_example["scores"]["exact_match"] == [100.0, 0.0, None]
    assert metrics["exact_match"]["value"] == 50.0  # (100 + 0) / 2: example 2 does not count
    old = (100.0 + 0.0 + 100.0) / 3  # each example against `answers or [target]`: 66.67
    assert not consistent(mean_scorer([100.0, 0.0, 100.0]), metrics["exact_match"]["value"])
    assert old != pytest.approx(50.0)
    em = stored_scorers(per_example)["exact_match"]
    assert consistent(em, 50.0) and em.score() == 50.0


def test_mean_scorer_leaves_out_examples_that_do_not_count():
    s = mean_scorer([100.0, None, 0.0, None])
    assert s.score() == 50.0
    idxs = np.array([[0, 0, 1, 3], [1, 3, 1, 3], [2, 2, 0, 1]])
    assert list(s.score_many(s.stats, idxs)) == [100.0, 0.0, 100.0 / 3]  # none counts: 0


def test_pvalues_pair_rows_with_their_baseline():
    """Knowledge p-values from stored scores; a row is tested against its baseline row only."""
    def run(variant, seed, em):
        return {"task": "knowledge", "dataset": "kb", "model": "m", "method": "cosup",
                "variant": variant, "seed": seed,
                "metrics": {"exact_match": {"value": 100.0 * sum(em) / len(em)}},
                "per_example": {"ids": list(range(len(em))),
                                "scores": {"exact_match": [100.0 * v for v in em]}}}

    good, bad = [1] * 36 + [0] * 4, [1] * 10 + [0] * 30
    results = [run("ntp", 0, bad), run("ntp+nsp", 0, good), run("nsp", 0, bad)]
    pairs = {("knowledge", ("m", "cosup", "ntp+nsp")): ("m", "cosup", "ntp"),
             ("knowledge", ("m", "cosup", "nsp")): ("m", "cosup", "ntp")}
    pv = pvalues(results, pairs, {}, {}, n_samples=200)
    assert set(pv) == {(("m", "cosup", v), "exact_match", "kb") for v in ("ntp+nsp", "nsp")}
    assert pv[(("m", "cosup", "ntp+nsp"), "exact_match", "kb")] < 0.01
    assert pv[(("m", "cosup", "nsp"), "exact_match", "kb")] == 1.0  # the same scores
