"""Paired bootstrap: agreement with sacrebleu, clear and null cases, per-metric scorers."""

from __future__ import annotations

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from repro.metrics.classification import accuracy_macro_f1
from repro.metrics.evaluate import evaluate_task
from repro.significance import (
    DEFAULT_SEED,
    consistent,
    example_scorers,
    macro_f1_scorer,
    mean_scorer,
    paired_bootstrap,
    parse_signature,
    resample_indices,
    sacrebleu_scorer,
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


@pytest.mark.parametrize(
    "task",
    ["translation", "summarization", "multiple_choice", "knowledge"],
)
def test_example_scorers_reproduce_reported_metrics(task, mt_case):
    refs, good, _ = mt_case
    refs, good = refs[:20], good[:20]
    extra = {}
    if task == "multiple_choice":
        extra = {"choices": [["w", "x", "y", "z"]] * 20, "label": [i % 4 for i in range(20)]}
        refs = ["ABCD"[i % 4] for i in range(20)]
        good = ["ABCD"[(i * 7) % 4] if i % 3 else "junk" for i in range(20)]
    if task == "knowledge":
        extra = {"answers": [[r.split()[0], r] for r in refs]}
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
