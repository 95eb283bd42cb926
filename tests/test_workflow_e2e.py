"""The tiny test config through every rule with Snakemake, then the checks a user relies on."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from repro.tasks import TASK_METRICS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *args: str, config: Path | None = None, check: bool = True):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--cores", "2",
           "--configfile", str(config or ROOT / "config" / "test.yaml"), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    proc = snakemake(work)
    (work / "snakemake.out").write_text(proc.stdout + proc.stderr)
    return work


def test_run_ends_by_printing_where_the_tables_and_plots_are(done):
    out = (done / "snakemake.out").read_text()
    tables = re.search(r"^Tables: (.*)$", out, re.M).group(1).split()
    plots = re.search(r"^Plots:  (.*)$", out, re.M).group(1).split()
    assert "results/tables/translation.md" in tables and "results/plots/main_metric.png" in plots
    assert all((done / p).is_file() for p in tables + plots)
    assert "--report results/report.html" in out


def test_every_run_has_metrics(done):
    runs = sorted((done / "results" / "runs").glob("*/*/*/*/*/seed*/metrics.json"))
    assert len(runs) == 15
    expected = {task: set(names) for task, names in TASK_METRICS.items()}
    for path in runs:
        m = json.loads(path.read_text())
        assert set(m["metrics"]) == expected[m["task"]], path
        for name, value in m["metrics"].items():
            # a value or a skip: could not run, or not applicable (a skip flagged
            # "not_applicable": not a metric of that dataset; repro.metrics.strict)
            assert ("value" in value) != ("skipped" in value), (path, name)
            assert "value" not in value or "not_applicable" not in value, (path, name)
        assert m["provenance"]["git_commit"] and m["provenance"]["versions"]["sacrebleu"]
    mt = json.loads(next(p for p in runs if "translation" in str(p)).read_text())
    assert "skipped" in mt["metrics"]["comet"] and "metrics.comet.model" in \
        mt["metrics"]["comet"]["skipped"]
    assert mt["metrics"]["bleu"]["signature"].startswith("nrefs:1")


def test_warmup_runs_keep_warmups_and_analysis(done):
    for run in ("translation/t_en_xa/tiny_t5", "multiple_choice/t_mc/tiny_llama"):
        path = done / "results/runs" / run / "warmup/n2/seed0"
        preds = [json.loads(line) for line in (path / "predictions.jsonl").open()]
        assert all("warmup" in p and "separator_found" in p for p in preds)
        analysis = json.loads((path / "metrics.json").read_text())["analysis"]
        assert {"warmup_word_overlap", "warmup_no_separator", "warmup_empty"} <= set(analysis)


def test_cosup_trains_once_retrieves_and_exports_kilt_files(done):
    runs = done / "results/runs/knowledge"
    for variant in ("separate", "ntp", "nsp", "ntp+nsp"):
        trained = runs / "t_kb/tiny_llama/cosup" / variant / "seed0"
        unseen = runs / "t_kb_unseen/tiny_llama/cosup" / variant / "seed0"
        # `separate`: Gen and Embseq from two training jobs; the others: model/embseq
        embseq = trained / ("embseq" if variant == "separate" else "model/embseq")
        assert embseq.is_dir() and not (unseen / "model").exists()
        # the index was built from two embedding shards, temp(): gone once the index exists
        assert not list((unseen / "index_shards").glob("*.npy"))
        logs = done / "results/logs/embed_passages" / unseen.relative_to(runs.parent)
        assert sorted(p.name for p in logs.glob("*.log")) == ["0-of-2.log", "1-of-2.log"]
        for run in (trained, unseen):
            assert (run / "index/index.faiss").is_file()
            preds = [json.loads(line) for line in (run / "predictions.jsonl").open()]
            assert all(isinstance(p["retrieved"], list) for p in preds)
            assert all(isinstance(p["spans"], list) and "raw_output" in p for p in preds)
            metrics = json.loads((run / "metrics.json").read_text())["metrics"]
            assert "value" in metrics["r_precision"] and "value" in metrics["correctness"]
            guess = [json.loads(line) for line in (run / "kilt/kilt_guess.jsonl").open()]
            gold = [json.loads(line) for line in (run / "kilt/kilt_gold.jsonl").open()]
            assert [g["id"] for g in guess] == [g["id"] for g in gold] == [p["id"] for p in preds]
            assert all("provenance" in g["output"][0] for g in guess)


def test_data_stages_and_filter_stats(done):
    stats = json.loads((done / "results/data/translation/t_en_xa/filter_stats.json").read_text())
    assert stats["train"]["kept"] == 100  # capped by the test config
    assert stats["train"]["dropped"]["cap"] == stats["train"]["input"] - 100 - sum(
        v for k, v in stats["train"]["dropped"].items() if k != "cap")
    passages = done / "results/data/knowledge/t_kb/passages.jsonl"
    assert passages.stat().st_size > 0
    # the test split has a filter job of its own (rule filter_test)
    test = json.loads((done / "results/data/translation/t_en_xa/filter_stats_test.json")
                      .read_text())
    assert set(stats) == {"train", "validation"} and set(test) == {"test"}
    assert (done / "results/data/knowledge/t_kb/test_passages.jsonl").read_text() == (
        passages.read_text())


def test_predictions_and_logs(done):
    run = done / "results/runs/multiple_choice/t_mc/tiny_llama/sft/default/seed0"
    preds = [json.loads(line) for line in (run / "predictions.jsonl").open()]
    assert len(preds) == 12 and all("hypothesis" in p for p in preds)
    log = [json.loads(line) for line in (run / "train_log.jsonl").open()]
    steps = max(row["step"] for row in log)
    # a 5-step run logs its loss at every step (repro.train_logging), not once
    assert [row["step"] for row in log if "loss" in row] == list(range(1, steps + 1))
    assert (run / "model" / "config.json").exists()
    bench = done / "results/benchmarks/train/multiple_choice/t_mc/tiny_llama/sft/default/seed0.tsv"
    assert bench.exists()


def test_tiny_models_pretrain_once_and_every_run_starts_there(done):
    for model, objective in (("tiny_t5", "span_corruption"), ("tiny_llama", "causal_lm")):
        pre = done / "results/pretrained" / model
        summary = json.loads((pre / "model/pretrain.json").read_text())
        assert summary["objective"] == objective and summary["steps"] == 4
        assert [json.loads(line)["step"] for line in (pre / "train_log.jsonl").open()
                if "loss" in json.loads(line)] == [1, 2, 3, 4]
        assert not (pre / "checkpoints").exists()  # removed once the model is in place
        assert (done / f"results/benchmarks/pretrain/{model}.tsv").exists()
    bases = [json.loads(p.read_text()) for p in (done / "results/models").glob("*/*/base.json")]
    assert len(bases) == 6  # one per (model, training dataset), none with weights of its own
    assert all(b["path"] == f"results/pretrained/{b['name']}/model" for b in bases)


def test_tables_and_plots(done):
    for task in ("translation", "summarization", "multiple_choice", "knowledge"):
        md = (done / f"results/tables/{task}.md").read_text()
        assert "| tiny_t5" in md
        tidy = pd.read_csv(done / f"results/tables/{task}.csv")
        assert {"task", "dataset", "model", "method", "seed", "metric", "value"} <= set(tidy)
    assert "skipped [" in (done / "results/tables/translation.md").read_text()  # COMET
    analysis = pd.read_csv(done / "results/tables/warmup_analysis.csv")
    assert sorted(analysis["dataset"]) == ["t_en_xa", "t_mc"]
    assert "Warmup words in reference" in (done / "results/tables/warmup_analysis.md").read_text()
    knowledge = (done / "results/tables/knowledge.md").read_text()
    assert "## Correctness" in knowledge and "## Retrieval" in knowledge  # a table per metric
    for plot in ("main_metric", "training_curves"):
        assert (done / f"results/plots/{plot}.png").stat().st_size > 1000


def test_noop_rerun_plans_nothing(done):
    out = snakemake(done, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_changed_value_reruns_only_its_runs(done, tmp_path):
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["datasets"]["t_sum"]["training"] = {"learning_rate": 0.002}
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(cfg))
    out = snakemake(done, "-n", "--quiet", "rules", config=edited).stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts.get("train") == 1 and counts.get("predict") == 1
    assert counts.get("evaluate") == 1 and counts.get("report") == 1
    assert "fetch" not in counts and "base_model" not in counts


def test_schema_violation_fails_before_any_job(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["decoding"]["num_beams"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake(tmp_path, "-n", config=bad, check=False)
    assert out.returncode != 0
    assert "num_beams" in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_lint_clean():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert "Congratulations" in out.stdout + out.stderr, out.stdout + out.stderr
    snakefmt = shutil.which("snakefmt", path=str(Path(sys.executable).parent))
    fmt = subprocess.run([snakefmt, "--check", "Snakefile", "rules"], cwd=ROOT,
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests",
                           "workflow_scripts"], cwd=ROOT, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
