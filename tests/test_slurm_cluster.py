"""The test config on a real single-node SLURM cluster (scripts/slurm_cluster.sh) through
`--workflow-profile profiles/slurm`: every non-local job is submitted with the sbatch resources
the profile and the rules ask for, and the results equal those of a local run.

Only the options a cluster without accounting needs are added on the command line (CI_OPTIONS);
docs/slurm.md explains them. Skipped, with the reason, only where SLURM cannot be installed or
started (not root, no packages, daemons that do not come up, or /etc/slurm/slurm.conf in use).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import yaml
from workflow_runs import (
    ENV,
    ROOT,
    command,
    completed_run,
    dry_run_blocks,
    load_yaml,
    write_yaml,
)

from repro import config as rc

pytestmark = pytest.mark.e2e
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
PROFILE = ROOT / "profiles" / "slurm"
# What a cluster without slurmdbd needs (sacct fails there), a quick first status check, and
# --cores: the CPUs of one (group) job, within the test node's.
CI_OPTIONS = ("--slurm-status-command", "squeue", "--slurm-no-account",
              "--slurm-init-seconds-before-status-checks", "2", "--cores", "2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster, stopped (daemons by pid) after the module's tests."""
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if not shutil.which(b)]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): run "
                    f"`scripts/slurm_cluster.sh install` as root (.ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons need root")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "REPRO_SLURM_DIR": str(state)}
    start = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                           text=True, timeout=180)
    if start.returncode in (3, 4, 5):
        pytest.skip(f"cannot start a SLURM test cluster here (exit {start.returncode}):\n"
                    f"{start.stderr[-3000:]}")
    assert start.returncode == 0, start.stderr
    try:
        yield state
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        for name in ("slurmctld", "slurmd", "munged"):
            assert not (state / "run" / f"{name}.pid").exists() or not _alive(
                state / "run" / f"{name}.pid"), f"{name} still running"


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def run_on_slurm(work: Path, config: Path, profile: Path, *args: str):
    """Snakemake through the SLURM profile; one retry after --unlock (an interrupted run)."""
    cmd = command(work, config, "--workflow-profile", str(profile), *CI_OPTIONS, "--verbose",
                  *args)
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1500)
    if out.returncode != 0:
        warnings.warn(f"SLURM run failed once, retrying:\n{out.stderr[-3000:]}", stacklevel=2)
        subprocess.run(command(work, config, "--unlock"), env=ENV, cwd=ROOT, timeout=300,
                       capture_output=True)
        first = out.stderr
        out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT,
                             timeout=1500)
        out.stderr = first + out.stderr
    assert out.returncode == 0, out.stderr[-8000:]
    return out.stdout + out.stderr


def sbatch_calls(log: str) -> dict[str, str]:
    """comment (rule and wildcards, or group; repeats numbered `#2`, `#3`, ...) -> the sbatch
    options before the wrapped command."""
    calls: dict[str, str] = {}
    for line in log.splitlines():
        if line.startswith("sbatch call:"):
            opts = line.split(" --wrap=", 1)[0]
            comment = re.search(r"--comment (\S+)", opts).group(1)
            key, k = comment, 1
            while key in calls:  # group jobs of one group share their comment
                k += 1
                key = f"{comment}#{k}"
            calls[key] = " ".join(opts.split())
    return calls


def gpu_model(cfg: dict) -> str:
    """The model the SLURM test asks one GPU for (a decoder-only one when there is one)."""
    models = cfg["models"]
    return next((m for m, d in models.items() if d["family"] in ("llama", "gpt2")), list(models)[0])


def results(work: Path) -> dict[str, dict]:
    return {str(p.relative_to(work)): json.loads(p.read_text())["metrics"]
            for p in sorted((work / "results" / "runs").rglob("metrics.json"))}


def hypotheses(path: Path) -> list[tuple[str, str]]:
    return [(r["id"], r["hypothesis"]) for r in map(json.loads, path.read_text().splitlines())]


def test_test_config_on_slurm_matches_a_local_run(cluster, tmp_path_factory, tmp_path):
    local = completed_run(tmp_path_factory)
    cfg = load_yaml()
    gpu = gpu_model(cfg)
    cfg["models"][gpu].setdefault("resources", {})["gpu"] = 1  # resources: rerun nothing
    config = write_yaml(tmp_path / "slurm.yaml", cfg)
    runs = rc.expand_runs(rc.load_config(config))
    work = tmp_path / "work"
    start = time.monotonic()
    log = run_on_slurm(work, config, PROFILE)
    print(f"SLURM run of the test config: {time.monotonic() - start:.0f} s")
    (tmp_path / "slurm.log").write_text(log)
    calls = sbatch_calls(log)

    # Every job but the local report went through sbatch, with the profile's resources.
    submitted = {c.split("_wildcards_")[0] for c in calls}
    assert "rule_report" not in submitted and {"rule_fetch", "rule_filter", "rule_base_model",
                                               "rule_train", "rule_predict"} <= submitted
    for comment, opts in calls.items():
        assert "--requeue" in opts, opts
        if comment.startswith(("rule_fetch", "rule_filter", "rule_base_model")):
            runtime = {"rule_fetch": 120, "rule_filter": 60, "rule_base_model": 30}[
                comment.split("_wildcards_")[0]]
            assert f"-p cpu -t {runtime} --mem 4000" in opts, opts
            assert "--ntasks=1 --cpus-per-task=1" in opts and "--gpus" not in opts, opts
        elif comment.startswith("rule_build_index"):
            assert "-p cpu -t 60 --mem 8000" in opts and "--gpus" not in opts, opts
        elif comment.startswith(("rule_train", "rule_predict", "rule_embed_passages")):
            model = next(m for m in cfg["models"] if f"_{m}_" in comment)
            res = cfg["models"][model]["resources"]
            assert f"-p gpu -t {res['runtime']} --mem {res['mem_mb']}" in opts, opts
            if model == gpu:
                assert "--cpus-per-gpu=2" in opts and opts.endswith("--gpus=1"), opts
                assert "--ntasks" not in opts, opts
            else:
                assert "--cpus-per-task=1" in opts and "--gpus" not in opts, opts
        else:  # scoring jobs, up to 8 in one sbatch job, 2 at a time (--cores 2)
            assert "score" in comment, comment
            assert "-p cpu" in opts and "--cpus-per-task=2" in opts, opts
            # the memory of the (at most 2) scoring jobs running at once: 6000 each for
            # evaluate, 2000 for kilt_export
            mem = int(re.search(r"--mem (\d+) ", opts).group(1))
            assert 6000 <= mem <= 12000, opts
    n_eval = len(runs)
    n_scoring = n_eval + sum(r.task == "knowledge" for r in runs)  # evaluate, kilt_export
    assert sum("score" in c for c in calls) == -(-n_scoring // 8)
    n_train = len(rc.training_runs(rc.load_config(config)))
    assert sum(c.startswith("rule_train") for c in calls) == n_train < n_eval

    # SLURM saw every job of this run complete (squeue keeps finished jobs, MinJobAge).
    uuid = re.search(r"--job-name (\S+)", next(iter(calls.values()))).group(1)
    states = subprocess.run(["squeue", "--states=all", "-h", "-n", uuid, "-o", "%T"],
                            capture_output=True, text=True, timeout=60).stdout.split()
    assert len(states) == len(calls) and set(states) == {"COMPLETED"}, states

    # The profile's alternative for clusters that reject --gpus: generic resources (gres).
    profile = yaml.safe_load((PROFILE / "profile.yaml").read_text())
    for rule in ("train", "predict"):
        profile["set-resources"][rule] = {"slurm_partition": "gpu", "gpu": 0, "gres": "gpu:1",
                                          "cpus_per_gpu": 2}
    gres = tmp_path / "profile-gres"
    gres.mkdir()
    write_yaml(gres / "profile.yaml", profile)
    run = next(r for r in runs if r.model == gpu)
    preds = f"{run.dir}/predictions.jsonl"
    before = hypotheses(work / preds)
    log = run_on_slurm(work, config, gres, "--forcerun", preds, "--allowed-rules", "predict",
                       preds)
    (tmp_path / "slurm-gres.log").write_text(log)
    (opts,) = sbatch_calls(log).values()
    assert "-p gpu" in opts and "--cpus-per-gpu=2" in opts and opts.endswith("--gres=gpu:1")
    assert "--gpus" not in opts, opts
    assert hypotheses(work / preds) == before

    # Same seeds, same results as the local run of the test config: first the prepared data
    # and base models, then every run's predictions and metrics, and the tables.
    for path in sorted((local / "results" / "data").rglob("*.json*")):
        assert (work / path.relative_to(local)).read_bytes() == path.read_bytes(), path
    differ = []
    for path in sorted((local / "results" / "models").rglob("*")):
        if path.is_file() and (work / path.relative_to(local)).read_bytes() != path.read_bytes():
            differ.append(str(path.relative_to(local)))
    assert not differ, differ  # tiny models (tokenizers included) build byte for byte alike
    assert results(work) == results(local)
    for r in runs:
        assert hypotheses(work / r.dir / "predictions.jsonl") == \
            hypotheses(local / r.dir / "predictions.jsonl")
    for table in sorted((local / "results" / "tables").glob("*.csv")):
        assert (work / "results" / "tables" / table.name).read_text() == table.read_text()


def test_profile_plans_without_a_cluster(tmp_path):
    """The profile parses and sets each job's resources even where SLURM is absent."""
    cfg = load_yaml()
    gpu = gpu_model(cfg)
    cfg["models"][gpu].setdefault("resources", {})["gpu"] = 1
    config = write_yaml(tmp_path / "slurm.yaml", cfg)
    out = subprocess.run(command(tmp_path, config, "-n", "--workflow-profile", str(PROFILE)),
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = set()
    for rule, body in dry_run_blocks(out.stdout):
        res = dict(kv.split("=", 1) for kv in
                   re.search(r"resources: (.*)", body).group(1).split(", ")) if rule != "all" \
            else {}
        wildcards = re.search(r"wildcards: (.*)", body)
        if rule in ("train", "predict"):
            model = re.search(r"model=([^,]+)", wildcards.group(1)).group(1)
            assert res["slurm_partition"] == "gpu" and res["cpus_per_gpu"] == "2", res
            assert res["gpu"] == ("1" if model == gpu else "0"), res
            assert res["mem_mb"] == str(cfg["models"][model]["resources"]["mem_mb"]), res
        elif rule == "evaluate":
            assert res["slurm_partition"] == "cpu" and res["mem_mb"] == "6000", res
        elif rule in ("fetch", "filter", "base_model"):
            assert res["slurm_partition"] == "cpu" and res["mem_mb"] == "4000", res
        seen.add(rule)
    assert {"fetch", "filter", "base_model", "train", "predict", "evaluate", "report"} <= seen
