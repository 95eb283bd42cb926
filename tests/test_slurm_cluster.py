"""The shipped SLURM profile, as a user gets it, on a real single-node cluster with accounting
(scripts/slurm_cluster.sh: slurmctld, slurmd, slurmdbd on MariaDB, 2 fake GPUs).

Nothing of profiles/slurm/profile.yaml is changed or added to except its placeholders, given on
the command line as docs/slurm.md tells a user to (SITE: the account; the test cluster's
partitions carry the placeholders' names). Job states come from sacct, the account is checked
with sacctmgr (given) or guessed from sacct (left out). Two options only speed the test up
(FAST). The test config (tests/data/slurm_test.yaml) has a model on 2 GPUs: its training runs
under torchrun in 2 gloo processes on the CPU (REPRO_FAKE_GPUS=1, repro.launch).

Skipped, with the reason, only where SLURM cannot be installed or started (not root, no
packages, daemons that do not come up, or /etc/slurm/slurm.conf in use); .ci/run installs it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from workflow_runs import ENV, ROOT, command, dry_run_blocks, load_yaml, write_yaml

from repro import config as rc
from repro import resources as rr

pytestmark = pytest.mark.e2e
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
PROFILE = ROOT / "profiles" / "slurm"
CONFIG = ROOT / "tests" / "data" / "slurm_test.yaml"
ACCOUNT = "repro"  # created by scripts/slurm_cluster.sh with sacctmgr
# The profile's placeholders a user fills on the command line (docs/slurm.md).
SITE = ("--default-resources", "slurm_partition=cpu", f"slurm_account={ACCOUNT}")
# Test speed only: the first status check after 2 s (the plugin waits 40 s), 2 CPUs per group.
FAST = ("--slurm-init-seconds-before-status-checks", "2", "--cores", "2")
SLURM_ENV = {**ENV, "REPRO_FAKE_GPUS": "1"}
GPU_RULES = ("train", "predict", "embed_passages")
STAGE = {"train": "train", "predict": "decode", "embed_passages": "embed"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster, stopped (daemons by pid) after the module's tests."""
    missing = [b for b in ("slurmctld", "slurmd", "slurmdbd", "sbatch", "munged", "mariadbd")
               if not shutil.which(b)]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): run "
                    f"`scripts/slurm_cluster.sh install` as root (.ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons need root")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "REPRO_SLURM_DIR": str(state)}
    t0 = time.monotonic()
    start = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                           text=True, timeout=300)
    if start.returncode in (3, 4):
        pytest.skip(f"cannot start a SLURM test cluster here (exit {start.returncode}):\n"
                    f"{start.stderr[-3000:]}")
    assert start.returncode == 0, start.stderr[-5000:]
    print(f"SLURM cluster with accounting up in {time.monotonic() - t0:.0f} s")
    try:
        yield state
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True,
                              text=True, timeout=300)
        assert stop.returncode == 0, stop.stderr
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            assert not _alive(state / "run" / f"{name}.pid"), f"{name} still running"


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def slurm_command(work: Path, config: Path, *args: str) -> list[str]:
    return command(work, config, "--workflow-profile", str(PROFILE), *FAST, "--verbose", *args)


def run_on_slurm(work: Path, config: Path, *args: str) -> str:
    """Snakemake through the shipped profile to the end; its output."""
    out = subprocess.run(slurm_command(work, config, *args), capture_output=True, text=True,
                         env=SLURM_ENV, cwd=ROOT, timeout=1500)
    assert out.returncode == 0, (out.stdout + out.stderr)[-8000:]
    return out.stdout + out.stderr


def sbatch_calls(log: str) -> dict[str, list[str]]:
    """comment (rule and wildcards, or group) -> the sbatch options of each submission, in
    order (a retried job is submitted again)."""
    calls: dict[str, list[str]] = {}
    for line in log.splitlines():
        if line.startswith("sbatch call:"):
            opts = " ".join(line.split(" --wrap=", 1)[0].split())
            comment = re.search(r"--comment (\S+)", opts).group(1)
            calls.setdefault(comment, []).append(opts)
    return calls


def sacct(*args: str) -> list[dict[str, str]]:
    fields = ("JobID", "JobName%60", "Comment%200", "Partition", "Account", "State",
              "Elapsed", "Timelimit")
    out = subprocess.run(["sacct", "-X", "-n", "-P", "--duplicates", "-o", ",".join(fields),
                          *args], capture_output=True, text=True, timeout=60, check=True)
    names = [f.split("%")[0] for f in fields]
    return [dict(zip(names, line.split("|"), strict=True)) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def main_run(cluster, tmp_path_factory):
    """The test config run to the end on the cluster: (config, work dir, log, seconds)."""
    work = tmp_path_factory.mktemp("slurm_work")
    t0 = time.monotonic()
    log = run_on_slurm(work, CONFIG, *SITE)
    seconds = time.monotonic() - t0
    print(f"SLURM run of {CONFIG.name}: {seconds:.0f} s")
    (work / "slurm.log").write_text(log)
    return rc.load_config(CONFIG), work, log, seconds


def test_shipped_profile_runs_the_workflow_with_accounting(main_run):
    cfg, work, log, _ = main_run
    calls = sbatch_calls(log)
    rules = {c.split("_wildcards_")[0].removeprefix("rule_") for c in calls}
    # every job but the local report went through sbatch, once (nothing failed)
    assert "report" not in rules and {"fetch", "filter", "base_model", "train", "predict",
                                      "embed_passages", "build_index"} <= rules, rules
    assert all(len(subs) == 1 for subs in calls.values()), calls
    for comment, (opts,) in calls.items():
        assert f"-A {ACCOUNT} " in opts and "--requeue" in opts, opts
        rule = comment.split("_wildcards_")[0].removeprefix("rule_")
        if rule not in GPU_RULES:
            assert "-p cpu" in opts and "--gpus" not in opts and "--gres" not in opts, opts
            continue
        # sizes from models.<m>.resources (the train, decode or embed entry), GPUs as --gpus
        model = next(m for m in cfg["models"] if f"_{m}_" in comment)
        res = rr.job_resources(cfg, model, STAGE[rule])
        assert f"-p gpu -t {res['runtime']} --mem {res['mem_mb']} " in opts, opts
        assert "--gres" not in opts, opts  # the profile drops the rules' gres (gres: "")
        if res["gpu"]:
            assert opts.endswith(f"--gpus={res['gpu']}") and "--cpus-per-gpu=4" in opts, opts
        else:
            assert "--gpus" not in opts and "--cpus-per-task=1" in opts, opts
        if rule == "train":  # one node; SIGTERM stop_seconds before the time limit
            stop = rr.stage_entry(cfg, model)["stop_seconds"]
            assert "--nodes=1" in opts and f"--signal=TERM@{stop}" in opts, opts
    assert any(opts[0].endswith("--gpus=2") for c, opts in calls.items()
               if c.startswith("rule_train")), "no 2-GPU training job"

    # sacct (slurmdbd) saw every job of this run complete, billed to the account
    uuid = re.search(r"--job-name (\S+)", next(iter(calls.values()))[0]).group(1)
    jobs = sacct("--name", uuid)
    assert len(jobs) == len(calls), jobs
    assert {(j["State"], j["Account"]) for j in jobs} == {("COMPLETED", ACCOUNT)}, jobs

    # the 2-GPU trainings ran in 2 processes under torchrun; every run was scored; the report
    # ran on the login node
    for run in rc.training_runs(cfg):
        train_log = (work / "results" / "logs" / "train" / f"{run.id}.log").read_text()
        processes = 2 if rr.stage_entry(cfg, run.model)["gpu"] == 2 else 1
        assert f"'processes': {processes}" in train_log, (run.id, train_log[-2000:])
        if processes == 2:
            assert "--nproc_per_node=2 --shutdown-timeout=" in train_log
    for run in rc.expand_runs(cfg):
        assert json.loads((work / run.dir / "metrics.json").read_text())["metrics"]
    assert (work / "results" / "report").is_dir()


def checkpoints(work: Path, run: rc.Run) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (work / run.dir / "checkpoints").glob(
        "checkpoint-*") if p.name.split("-")[1].isdigit())


def running_job(comment: str) -> tuple[str, int] | None:
    """(SLURM job id, seconds it has run) of the running job with this comment."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k|%M"],
                         capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        jid, com, elapsed = line.split("|")
        if com == comment:
            parts = [int(x) for x in re.split(r"[:-]", elapsed)]
            return jid, sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return None


def test_preempted_and_time_limited_trainings_resume_from_their_checkpoints(
        main_run, tmp_path):
    """Two trainings of the completed run again, longer, through the shipped profile without
    the account on the command line. The 2-GPU torchrun job is preempted by a
    job of the `urgent` partition (SIGTERM, grace time); the other one's time limit is cut
    short while it runs, so SLURM's early signal (--signal=TERM@stop_seconds) comes before
    it. Each saves a checkpoint at the signal and stops; Snakemake's retry resumes there, in
    the same time limit."""
    cfg, work, _, _ = main_run
    fault = load_yaml(CONFIG)
    # long enough to be running when the signal comes (tiny_t5: up to ~40 s after its first
    # checkpoint; 3,000 steps took 150 s with 8-12 other processes on the 2 cores)
    fault["models"]["tiny_llama"]["training"] = {"epochs": 60, "save_steps": 10}
    fault["models"]["tiny_t5"]["training"] = {"epochs": 800, "save_steps": 20}
    fault["models"]["tiny_t5"]["resources"]["stop_seconds"] = 110
    config = write_yaml(tmp_path / "fault.yaml", fault)
    fcfg = rc.load_config(config)
    preempted = next(r for r in rc.training_runs(fcfg) if r.model == "tiny_llama"
                     and r.method == "cosup")
    limited = next(r for r in rc.training_runs(fcfg) if r.model == "tiny_t5")
    comment = {r: "rule_train_wildcards_" + "_".join(str(v) for v in r.fields().values())
               for r in (preempted, limited)}
    targets = [f"{r.dir}/model" for r in (preempted, limited)]
    log_path = tmp_path / "fault.log"
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(slurm_command(work, config, *targets), stdout=out,
                                stderr=subprocess.STDOUT, env=SLURM_ENV, cwd=ROOT)
    urgent = cut = None
    try:
        while proc.poll() is None and time.monotonic() - t0 < 1200:
            job = running_job(comment[preempted])
            if urgent is None and job and checkpoints(work, preempted):
                # a high-priority job needing both GPUs: SLURM preempts the training
                urgent = subprocess.run(
                    ["sbatch", "--parsable", "-p", "urgent", "-A", ACCOUNT, "--gres=gpu:2",
                     "-t", "1", "-o", "/dev/null", "--wrap", "sleep 2"],
                    capture_output=True, text=True, check=True, timeout=60).stdout.strip()
            job = running_job(comment[limited])
            if cut is None and job and checkpoints(work, limited):
                # the time limit now ends 60 to 120 s from now; the early signal
                # (110 s before it) is due at SLURM's next time-limit check
                jid, elapsed = job
                limit = math.ceil((elapsed + 60) / 60)
                subprocess.run(["scontrol", "update", f"JobId={jid}", f"TimeLimit={limit}"],
                               check=True, timeout=60)
                cut = (jid, limit)
            time.sleep(1)
        rc_ = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=120)
    log = log_path.read_text()
    print(f"SLURM preemption and time-limit run: {time.monotonic() - t0:.0f} s")
    assert rc_ == 0, log[-8000:]
    assert urgent and cut, f"events not triggered (urgent={urgent}, cut={cut}):\n{log[-4000:]}"
    assert {j["State"] for j in sacct("-j", urgent)} == {"COMPLETED"}

    calls = sbatch_calls(log)
    for run in (preempted, limited):
        subs = calls[comment[run]]
        assert len(subs) == 2, subs  # the first attempt failed, the retry completed
        for opts in subs:
            # no account given: the plugin (2.8.0) tries to guess one with a malformed sacct
            # call ("sacct: invalid option -- '1'") and submits without -A; SLURM bills the
            # user's default account (checked in sacct below)
            assert " -A " not in opts or f" -A {ACCOUNT} " in opts, opts
        # a training retry asks for the same time (it resumes) and memory up to its cap
        res = [rr.job_resources(fcfg, run.model, "train", a) for a in (1, 2)]
        for opts, r in zip(subs, res, strict=True):
            assert f"-t {r['runtime']} --mem {r['mem_mb']} " in opts, opts
        assert res[0]["runtime"] == res[1]["runtime"]
        # attempt 1 (its log, printed by show-failed-logs): stopped at the signal with a
        # checkpoint; attempt 2 (the rule log): resumed from exactly that checkpoint
        stopped = re.findall(rf"SIGTERM at step (\d+): checkpoint saved in "
                             rf"{re.escape(run.dir)}/checkpoints/checkpoint-(\d+)", log)
        assert stopped and stopped[0][0] == stopped[0][1], log[-4000:]
        train_log = (work / "results" / "logs" / "train" / f"{run.id}.log").read_text()
        ckpt = f"{run.dir}/checkpoints/checkpoint-{stopped[0][0]}"
        assert f"'resumed_from': '{ckpt}'" in train_log, train_log[-3000:]
        assert (work / run.dir / "model").is_dir()
    preempted_log = work / "results" / "logs" / "train" / f"{preempted.id}.log"
    assert "'processes': 2" in preempted_log.read_text()

    # what slurmdbd recorded: the preempted job, then its retry; the cut job ended before its
    # (shortened) limit, stopped by the early signal, then its retry; all on the account
    jobs = [j for j in sacct("-S", "now-1hours") if j["Comment"] in comment.values()]
    assert {j["Account"] for j in jobs} == {ACCOUNT}, jobs
    first, second = [j for j in jobs if j["Comment"] == comment[preempted]][-2:]
    assert first["State"] in ("FAILED", "PREEMPTED") and second["State"] == "COMPLETED"
    first, second = [j for j in jobs if j["Comment"] == comment[limited]][-2:]
    assert first["JobID"] == cut[0] and first["State"] == "FAILED", first
    assert _seconds(first["Elapsed"]) < cut[1] * 60, first
    assert second["State"] == "COMPLETED", second


def _seconds(elapsed: str) -> int:
    parts = [int(x) for x in re.split(r"[:-]", elapsed)]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def test_profile_plans_without_a_cluster(tmp_path):
    """The shipped profile parses and sets each job's resources where SLURM is absent."""
    cfg = rc.load_config(CONFIG)
    out = subprocess.run(command(tmp_path, CONFIG, "-n", "--workflow-profile", str(PROFILE)),
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = set()
    for rule, body in dry_run_blocks(out.stdout):
        if rule == "all" or "resources: " not in body:
            continue
        res = dict(kv.split("=", 1) for kv in re.search(r"resources: (.*)", body).group(1)
                   .split(", "))
        if rule in GPU_RULES:
            model = re.search(r"model=([^,\s]+)", body).group(1)
            want = rr.job_resources(cfg, model, STAGE[rule])
            assert res["slurm_partition"] == "gpu" and res["gres"] == "", res
            assert (res["gpu"], res["mem_mb"], res["runtime"]) == tuple(
                str(want[k]) for k in ("gpu", "mem_mb", "runtime")), (rule, model, res)
        else:
            assert res["slurm_partition"] == "cpu" and "gpu" not in res, res
        seen.add(rule)
    assert set(GPU_RULES) | {"fetch", "filter", "base_model", "evaluate", "report"} <= seen
    assert yaml.safe_load((PROFILE / "profile.yaml").read_text())["executor"] == "slurm"
