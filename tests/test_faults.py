"""Faults and bad input: killed training jobs resume from their checkpoint and end where an
uninterrupted run ends; interrupted writes leave no half-written output; corrupt or mismatched
checkpoints, non-finite losses, missing or emptied splits and short prediction files stop with
an error naming the file or step. docs/reliability.md tabulates these tests."""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import KillAt
from tiny_models import train_config
from transformers import TrainerControl, TrainerState
from workflow_runs import (
    ENV,
    ROOT,
    load_yaml,
    pretrain_on_kept_datasets,
    signal_group,
    snakemake,
    start_snakemake,
    wait_for,
    write_yaml,
)

from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.checkpoints import CheckpointError, checkpoint_dirs, resumable_checkpoint
from repro.io import read_json, write_json, write_jsonl

# ---------------------------------------------------------------------------------------------
# Checkpoints, in process: a tiny model trained a few steps, then killed.

WORDS = "the red cat sees a dog small bird eats big blue".split()
TINY_T5 = {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1, "num_decoder_layers": 1,
           "num_heads": 2}


def records(n):
    out = []
    for i in range(n):
        src = " ".join(WORDS[(i * 3 + k) % len(WORDS)] for k in range(4))
        out.append({"id": f"r{i}", "source": src, "target": " ".join(reversed(src.split()))})
    return out



@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(root, data dir, manifest, resolved run config) of a tiny translation run."""
    root = tmp_path_factory.mktemp("ckpt")
    write_jsonl(root / "data" / "train.jsonl", records(32))
    write_jsonl(root / "data" / "validation.jsonl", records(4))
    manifest = prepare_base_model("m", {"kind": "tiny", "family": "t5", "config": TINY_T5,
                                        "tokenizer": {"vocab_size": 60}},
                                  root / "data" / "train.jsonl", root / "base")
    resolved = train_config(seed=1, max_source_len=16, max_target_len=16)
    return root, root / "data", manifest, resolved


def train(tiny, out: Path, kill_at: int | None = None, resolved=None):
    _, data, manifest, default = tiny
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):
        kw["callbacks"] = [*kw.get("callbacks", []), *([KillAt(kill_at)] if kill_at else [])]
        orig(self, *a, **kw)

    train_mod.MethodTrainer.__init__ = init
    try:
        return train_mod.train_run(resolved or default, manifest, data, out / "model",
                                   out / "log.jsonl", out / "checkpoints")
    finally:
        train_mod.MethodTrainer.__init__ = orig


@pytest.fixture(scope="module")
def killed(tiny):
    """Checkpoints of a run killed at step 5 (checkpoint-2 and checkpoint-4 kept)."""
    out = tiny[0] / "killed"
    with pytest.raises(KeyboardInterrupt):
        train(tiny, out, kill_at=5)
    assert [p.name for p in checkpoint_dirs(out / "checkpoints")] == ["checkpoint-4",
                                                                       "checkpoint-2"]
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_resume_uses_the_last_finished_checkpoint_and_cleans_up(tiny, killed, tmp_path):
    out = copy_run(killed, tmp_path / "run")
    partial = out / "checkpoints" / "checkpoint-6"  # killed while writing: no trainer_state
    shutil.copytree(out / "checkpoints" / "checkpoint-4", partial)
    (partial / "trainer_state.json").unlink()
    summary = train(tiny, out)
    assert summary["resumed_from"].endswith("checkpoint-4")
    assert summary["steps"] == 8  # 32 records / batch 4
    assert (out / "model" / "config.json").exists()
    assert not (out / "checkpoints").exists()  # removed once the final model is in place


def test_checkpoints_of_another_config_are_not_resumed(tiny, killed, tmp_path):
    out = copy_run(killed, tmp_path / "run")
    other = json.loads(json.dumps(tiny[3]))
    other["training"]["learning_rate"] = 5e-3  # an edited config: Snakemake reruns the job
    assert resumable_checkpoint(out / "checkpoints", other) is None
    assert checkpoint_dirs(out / "checkpoints") == []
    assert read_json(out / "checkpoints" / "run_config.json") == other


def test_corrupt_checkpoint_names_the_file(tiny, killed, tmp_path):
    out = copy_run(killed, tmp_path / "run")
    weights = out / "checkpoints" / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint-4/model\.safetensors: corrupt"):
        train(tiny, out)


def test_corrupt_optimizer_state_names_the_file(tiny, killed, tmp_path):
    out = copy_run(killed, tmp_path / "run")
    (out / "checkpoints" / "checkpoint-4" / "optimizer.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"checkpoint-4/optimizer\.pt: corrupt"):
        resumable_checkpoint(out / "checkpoints", tiny[3])


def test_mismatched_checkpoint_names_the_file_and_tensor(tiny, killed, tmp_path):
    out = copy_run(killed, tmp_path / "run")
    other = prepare_base_model("big", {"kind": "tiny", "family": "t5",
                                       "config": {**TINY_T5, "d_model": 24},
                                       "tokenizer": {"vocab_size": 60}},
                               tiny[1] / "train.jsonl", tmp_path / "other")
    shutil.copy(Path(other["path"]) / "model.safetensors",
                out / "checkpoints" / "checkpoint-4" / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"checkpoint-4/model\.safetensors: does not fit "
                                              r"the run's model \(\S+: \(\d+, 24\) in the checkp"):
        train(tiny, out)


def test_infinite_logged_loss_names_the_step():
    state = TrainerState()
    state.global_step = 17
    with pytest.raises(train_mod.NonFiniteLossError, match="loss is inf at step 17"):
        train_mod.FiniteLogCheck().on_log(None, state, TrainerControl(), logs={"loss": math.inf})


# ---------------------------------------------------------------------------------------------
# Atomic outputs: an interrupted write leaves the old file (or none), never half a file.

def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"bleu": 1.0})
    with pytest.raises(TypeError):
        write_json(target, {"bleu": 2.0, "bad": object()})
    assert read_json(target) == {"bleu": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_killed_writer_leaves_no_half_written_file(tmp_path):
    target = tmp_path / "predictions.jsonl"
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(ROOT / "src")!r})
from repro.io import write_jsonl
def rows():
    for i in range(1000):
        if i == 500:
            os.kill(os.getpid(), signal.SIGKILL)  # the job dies mid-file
        yield {{"id": i, "hypothesis": "x" * 100}}
write_jsonl({str(target)!r}, rows())
"""
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()  # only a hidden temporary file, which no rule reads


# ---------------------------------------------------------------------------------------------
# Through Snakemake: one translation run of the test config, trained long enough to be killed.

def fault_config(tmp_path: Path, **training) -> Path:
    cfg = load_yaml()
    pair = next(n for n, d in cfg["datasets"].items() if d["task"] == "translation")
    cfg["datasets"] = {pair: cfg["datasets"][pair]}
    cfg["experiments"] = [{"datasets": [pair], "models": ["tiny_t5"],
                           "methods": {"sft": {"default": {}}}}]
    cfg["models"] = {"tiny_t5": cfg["models"]["tiny_t5"]}
    cfg["training"].update({"epochs": 12, "save_steps": 3, "learning_rate": 5e-3, **training})
    return write_yaml(tmp_path / "faults.yaml", pretrain_on_kept_datasets(cfg))


def run_dir(work: Path) -> Path:
    return next((work / "results" / "runs").glob("translation/*/tiny_t5/sft/default/seed0"))


def target(work: Path) -> str:
    return str(run_dir(work).relative_to(work) / "metrics.json")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A completed, uninterrupted run: (work dir, config, predictions, metrics)."""
    work = tmp_path_factory.mktemp("reference")
    cfg = fault_config(work)
    cfg_data = load_yaml(cfg)
    pair = next(iter(cfg_data["datasets"]))
    metrics = f"results/runs/translation/{pair}/tiny_t5/sft/default/seed0/metrics.json"
    snakemake(work, metrics, config=cfg)
    run = run_dir(work)
    return work, cfg, (run / "predictions.jsonl").read_text(), read_json(run / "metrics.json")


def copy_work(reference, tmp_path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(reference[0], work, symlinks=True)
    return work


def train_log(work: Path) -> str:
    return next((work / "results" / "logs" / "train").rglob("seed0.log")).read_text()


def checkpoint_after(work: Path, step: int):
    def ready():
        return any(int(p.name.split("-")[1]) >= step and (p / "trainer_state.json").exists()
                   for p in checkpoint_dirs(run_dir(work) / "checkpoints"))
    return ready


def hypotheses(text: str) -> list[tuple[str, str]]:
    return [(r["id"], r["hypothesis"]) for r in map(json.loads, text.splitlines())]


def assert_same_results(work: Path, reference) -> None:
    run = run_dir(work)
    assert hypotheses((run / "predictions.jsonl").read_text()) == hypotheses(reference[2])
    assert read_json(run / "metrics.json")["metrics"] == reference[3]["metrics"]


def remove_protected(path: Path) -> None:
    """Delete a trained model, which the workflow write-protects (protected()): make it
    writable first (as a user would, `chmod -R u+w`; root needs no permission)."""
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    shutil.rmtree(path)


@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_training_resumes_to_the_same_metrics(reference, tmp_path, signum):
    work, cfg = copy_work(reference, tmp_path), reference[1]
    run = run_dir(work)  # as before the run's first training: data and base model ready
    remove_protected(run / "model")
    for name in ("train_log.jsonl", "predictions.jsonl", "metrics.json"):
        (run / name).unlink()
    proc = start_snakemake(work, target(work), config=cfg, log=tmp_path / "killed.log")
    try:
        assert wait_for(checkpoint_after(work, 6), timeout=600, proc=proc), (
            "no checkpoint before the end of training:\n" + (tmp_path / "killed.log").read_text())
    finally:
        code = signal_group(proc, signum)
    assert code != 0
    assert not (run_dir(work) / "model").exists()
    if signum == signal.SIGTERM:  # the job saved a checkpoint at the step it was stopped at
        assert "SIGTERM at step" in train_log(work) and "rerun to resume" in train_log(work)
    else:  # a SIGKILLed Snakemake leaves its lock behind
        snakemake(work, "--unlock", config=cfg, cores=False)
    out = snakemake(work, "--rerun-incomplete", target(work), config=cfg)
    assert "rule train:" in out.stdout + out.stderr
    assert "resuming from" in train_log(work)
    assert_same_results(work, reference)


@pytest.mark.e2e
def test_non_finite_loss_stops_training_naming_the_step(reference, tmp_path):
    work = copy_work(reference, tmp_path)
    cfg = fault_config(tmp_path, learning_rate=1.0e30)
    out = snakemake(work, target(work), config=cfg, check=False)
    assert out.returncode != 0
    assert re.search(r"NonFiniteLossError: .*(loss|nan|inf).* at step \d+", train_log(work))


@pytest.mark.e2e
def test_short_prediction_file_is_named(reference, tmp_path):
    work = copy_work(reference, tmp_path)
    preds = run_dir(work) / "predictions.jsonl"
    lines = preds.read_text().splitlines(keepends=True)
    preds.write_text("".join(lines[:-1]))
    out = snakemake(work, target(work), config=reference[1], check=False)
    assert out.returncode != 0
    log = next((work / "results" / "logs" / "evaluate").rglob("seed0.log")).read_text()
    assert f"{preds.relative_to(work)}: {len(lines) - 1} predictions but {len(lines)} " \
           f"references" in log
    assert not (run_dir(work) / "metrics.json").exists()


@pytest.mark.e2e
def test_missing_split_and_empty_split_are_named(tmp_path):
    data = tmp_path / "data"
    rows = [{"id": f"r{i}", "src": f"a b c {i}", "tgt": f"x y {i}"} for i in range(6)]
    for split in ("train", "validation", "test"):
        write_jsonl(data / f"{split}.jsonl", rows)
    long_rows = [{**r, "src": "w " * 50} for r in rows]
    write_jsonl(data / "long_train.jsonl", long_rows)
    columns = {"source": "src", "target": "tgt"}
    cfg = load_yaml()
    cfg["datasets"] = {
        "no_test": {"task": "translation", "target_lang": "xa",
                    "source": {"kind": "local", "columns": columns,
                               "files": {"train": str(data / "train.jsonl"),
                                         "validation": str(data / "validation.jsonl"),
                                         "test": str(data / "missing_test.jsonl")}}},
        "all_filtered": {"task": "translation", "target_lang": "xa",
                         "filter": {"max_source_words": 10},
                         "source": {"kind": "local", "columns": columns,
                                    "files": {"train": str(data / "long_train.jsonl"),
                                              "validation": str(data / "validation.jsonl"),
                                              "test": str(data / "test.jsonl")}}},
    }
    cfg["models"] = {"tiny_t5": cfg["models"]["tiny_t5"]}

    def only(name: str) -> Path:
        """The config with the one dataset."""
        one = {**cfg, "datasets": {name: cfg["datasets"][name]},
               "experiments": [{"datasets": [name], "models": ["tiny_t5"],
                                "methods": {"sft": {"default": {}}}}]}
        return write_yaml(tmp_path / f"{name}.yaml", pretrain_on_kept_datasets(one))

    work = tmp_path / "work"
    # a local file the config names is an input: a missing one stops Snakemake while it builds
    # the DAG (also a dry run), naming the key and the file, before any job
    out = snakemake(work, "-n", config=only("no_test"), check=False)
    assert out.returncode != 0
    assert (f"missing file named in the config: datasets.no_test.source.files.test: "
            f"{data / 'missing_test.jsonl'} does not exist") in out.stderr
    assert not (work / "results").exists()
    # a split emptied by its filter: the filter job names the split and why
    out = snakemake(work, "--keep-going", config=only("all_filtered"), check=False)
    assert out.returncode != 0
    logs = work / "results" / "logs"
    filter_log = (logs / "filter" / "translation" / "all_filtered.log").read_text()
    # (length filters apply to training data only: test splits stay as published)
    assert "raw/train.jsonl: split 'train' is empty after filtering" in filter_log
    assert not (work / "results" / "data" / "translation" / "all_filtered" / "train.jsonl").exists()
