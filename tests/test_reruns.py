"""Incremental reruns: after a completed run of the test config, an edited copy of the config
plans exactly the jobs the edit touches and what depends on them (Snakemake's params trigger on
each job's canonical config slice); reordering keys or changing nothing plans no job."""

from __future__ import annotations

import copy

import pytest
from workflow_runs import (
    TEST_CONFIG,
    completed_run,
    job,
    load_yaml,
    plan,
    run_jobs,
    snakemake,
    write_yaml,
)

from repro import config as rc

pytestmark = pytest.mark.e2e
REPORT = job("report")


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    return completed_run(tmp_path_factory)


def runs_of(cfg_path):
    return rc.expand_runs(rc.load_config(cfg_path))


def edited(tmp_path, edit, name="edited.yaml"):
    cfg = load_yaml()
    edit(cfg)
    return write_yaml(tmp_path / name, cfg)


def first_dataset(task):
    return next(n for n, d in load_yaml()["datasets"].items() if d["task"] == task)


def reorder(obj):
    """The same config with the keys of every mapping in reverse order (lists untouched)."""
    if isinstance(obj, dict):
        return {k: reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [reorder(v) for v in obj]
    return obj


def test_unchanged_or_reordered_config_reruns_nothing(done, tmp_path):
    assert plan(done, TEST_CONFIG) == set()
    shuffled = write_yaml(tmp_path / "reordered.yaml", reorder(load_yaml()))
    assert list(load_yaml(shuffled)) != list(load_yaml())
    assert plan(done, shuffled) == set()
    out = snakemake(done, "-n", config=shuffled).stdout
    assert "Nothing to be done" in out


def test_learning_rate_of_one_language_pair(done, tmp_path):
    pair = first_dataset("translation")

    def edit(cfg):
        training = cfg["datasets"][pair].setdefault("training", {})
        training["learning_rate"] = 2 * float(cfg["training"]["learning_rate"])

    cfg = edited(tmp_path, edit)
    expected = {j for r in runs_of(cfg) if r.dataset == pair for j in run_jobs(r)} | {REPORT}
    assert len(expected) > 1
    assert plan(done, cfg) == expected


def test_model_of_one_metric_rescores_only_its_task(done, tmp_path):
    cfg = edited(tmp_path, lambda c: c.setdefault("metrics", {}).setdefault("bertscore", {})
                 .update(model="another-encoder"))
    expected = {j for r in runs_of(cfg) if r.task == "summarization"
                for j in run_jobs(r, ("evaluate",))} | {REPORT}
    assert len(expected) > 1
    assert plan(done, cfg) == expected


def test_layout_of_one_table_redraws_only_the_report(done, tmp_path):
    pair = first_dataset("translation")
    cfg = edited(tmp_path, lambda c: c.setdefault("report", {}).setdefault("groups", {})
                 .update(translation={"Pairs": [pair]}))
    assert plan(done, cfg) == {REPORT}


def test_added_seed_runs_only_the_new_runs(done, tmp_path):
    def edit(cfg):
        exp = cfg["experiments"][0]
        exp["seeds"] = [*exp.get("seeds", [0]), 7]

    cfg = edited(tmp_path, edit)
    new = set(runs_of(cfg)) - set(runs_of(TEST_CONFIG))
    assert new and all(r.seed == 7 for r in new)
    assert plan(done, cfg) == {j for r in new for j in run_jobs(r)} | {REPORT}


def test_added_language_pair_prepares_its_data_and_model(done, tmp_path):
    pair = first_dataset("translation")

    def edit(cfg):
        new = copy.deepcopy(cfg["datasets"][pair])
        new["source"]["options"]["pair"] = "en-xb"
        new["target_lang"] = "xb"
        cfg["datasets"]["t_en_xb"] = new
        cfg["experiments"][0]["datasets"].append("t_en_xb")

    cfg = edited(tmp_path, edit)
    new = set(runs_of(cfg)) - set(runs_of(TEST_CONFIG))
    assert new and {r.dataset for r in new} == {"t_en_xb"}
    expected = {job(rule, task="translation", dataset="t_en_xb")
                for rule in ("fetch", "filter", "filter_test")} | {REPORT}
    expected |= {job("base_model", model=m, dataset="t_en_xb") for m in {r.model for r in new}}
    expected |= {j for r in new for j in run_jobs(r)}
    assert plan(done, cfg) == expected


def test_pretraining_steps_of_one_model_rerun_its_pretraining_and_runs(done, tmp_path):
    """An edit to models.<m>.pretrain: that model's pretraining, its base models and every run
    that starts from it (and the report), nothing else: no data job, no other model's job."""
    model = "tiny_t5"

    def edit(cfg):
        cfg["models"][model]["pretrain"] = {**cfg["models"][model]["pretrain"], "steps": 5}

    cfg = edited(tmp_path, edit)
    runs = [r for r in runs_of(cfg) if r.model == model]
    expected = {job("pretrain", model=model), REPORT}
    expected |= {job("base_model", model=model, dataset=d) for d in {r.dataset for r in runs}}
    expected |= {j for r in runs for j in run_jobs(r)}
    assert {r.model for r in runs_of(cfg)} - {model}  # another model, left alone
    assert plan(done, cfg) == expected
