"""Run ids and directories (repro.runs), and the one table of tasks and metrics (repro.tasks)."""

from __future__ import annotations

import pytest

from repro.data import schema
from repro.metrics import kilt
from repro.runs import RUNS_ROOT, Run, dir_pattern, id_pattern, run_dir
from repro.tasks import MAIN_METRIC, TASK_METRICS, TASKS, other_tasks_metrics

RUN = Run("translation", "de-en", "mt5_base", "warmup", "n4", 2)


def test_id_and_directory_round_trip():
    assert RUN.id == "translation/de-en/mt5_base/warmup/n4/seed2"
    assert Run.from_id(RUN.id) == RUN
    assert run_dir(RUN) == f"{RUNS_ROOT}/{RUN.id}" == RUN.dir
    for root in ("results/runs", "/abs/out/runs", "seed9/x", "results/paper_cosup/runs"):
        d = run_dir(RUN, root)
        assert d == f"{root}/{RUN.id}"
        for path in (d, f"{d}/metrics.json", f"{d}/index_shards/0-of-64.npy",
                     f"{d}/model/embseq/config.json"):
            assert Run.from_path(path) == RUN, path


def test_per_run_files_outside_run_directories():
    assert Run.from_path(f"results/report/configs/{RUN.id}.json") == RUN
    assert Run.from_path(f"/w/results/plots/training/{RUN.id}.png") == RUN


def test_names_that_look_like_seeds():
    """The rightmost seed<n> part ends the id, whatever the other fields are called."""
    odd = Run("knowledge", "seed1", "seed2", "cosup", "seed3", 0)
    assert Run.from_path(f"results/runs/{odd.id}/predictions.jsonl") == odd
    assert Run.from_id(odd.id) == odd


@pytest.mark.parametrize("bad", ["translation/de-en/m/sft/default", "a/b/c/d/e/f/seed0",
                                 "a/b/c/d/e/seedx", "a//c/d/e/seed0", "a/b/c/d/e/seed0.json"])
def test_not_a_run_id(bad):
    with pytest.raises(ValueError, match="not a run id"):
        Run.from_id(bad)


def test_path_without_run_id():
    with pytest.raises(ValueError, match="results/tables/x.md: no run id"):
        Run.from_path("results/tables/x.md")
    with pytest.raises(ValueError, match="no run id"):
        Run.from_path("d/m/sft/default/seed0/metrics.json")  # only four parts before seed


def test_from_record_and_wildcards():
    record = {**RUN.fields(), "seed": "2", "metrics": {}}
    assert Run.from_record(record) == RUN

    class Wildcards:
        task, dataset, model, method, variant, seed = (*RUN.id.split("/")[:5], "2")

    assert Run.from_wildcards(Wildcards) == RUN


def test_patterns_for_rules():
    assert id_pattern() == "{task}/{dataset}/{model}/{method}/{variant}/seed{seed}"
    assert dir_pattern("out", task="knowledge") == \
        "out/knowledge/{dataset}/{model}/{method}/{variant}/seed{seed}"
    assert dir_pattern(**RUN.fields()) == run_dir(RUN)
    with pytest.raises(ValueError, match="not run fields"):
        id_pattern(lang="de")


def test_task_table_is_the_one_copy():
    assert schema.TASKS is TASKS
    assert set(TASK_METRICS) == set(TASKS) == set(MAIN_METRIC)
    assert all(MAIN_METRIC[t] in TASK_METRICS[t] for t in TASKS)
    assert f"recall_at_{kilt.RECALL_K}" in TASK_METRICS["knowledge"]
    # rougeL is both a summarization and a (KILT) knowledge metric: it concerns both
    assert "bertscore" in other_tasks_metrics("translation")
    assert "rougeL" not in other_tasks_metrics("knowledge") | other_tasks_metrics("summarization")
    assert "bleu" not in other_tasks_metrics("translation")
