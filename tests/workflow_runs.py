"""Helpers for the tests that drive Snakemake as a user would (reruns, faults, SLURM): run it on
a config in a work directory, read the jobs a dry run plans, and build the completed run of the
test config once per test session (a module cache: several test files share it)."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}

Job = tuple[str, tuple[tuple[str, str], ...]]


def command(workdir: Path, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(config), *args]


def snakemake(workdir: Path, *args: str, config: Path = TEST_CONFIG, check: bool = True,
              timeout: float = 900, cores: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake to the end; on failure (check) raise with the tail of its output."""
    cmd = command(workdir, config, *(("--cores", "2") if cores else ()), *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc


def start_snakemake(workdir: Path, *args: str, config: Path = TEST_CONFIG,
                    log: Path | None = None) -> subprocess.Popen:
    """Start Snakemake in a session of its own, so that a signal can reach all its jobs."""
    with open(log or os.devnull, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command(workdir, config, "--cores", "2", *args), stdout=out,
                                stderr=subprocess.STDOUT, env=ENV, cwd=ROOT,
                                start_new_session=True)


def signal_group(proc: subprocess.Popen, signum: int, timeout: float = 120) -> int:
    """Send signum to the process group of proc (Snakemake and its jobs) and wait for it."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=30)


def wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None,
             interval: float = 0.02) -> bool:
    """Poll predicate until true (True), timeout or the end of proc (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(predicate())
        time.sleep(interval)
    return False


def load_yaml(path: Path = TEST_CONFIG) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def pretrain_on_kept_datasets(cfg: dict[str, Any]) -> dict[str, Any]:
    """The test config cut to some of its datasets: each tiny model pretrains on the datasets
    left (models.<m>.pretrain.corpus); with none left it starts from a random init. Returns a
    new config (`cfg` and its models unchanged)."""
    cfg = {**cfg, "models": copy.deepcopy(cfg["models"])}
    for model in cfg["models"].values():
        section = model.get("pretrain")
        if section:
            corpus = [d for d in section["corpus"] if d in cfg["datasets"]]
            if corpus:
                model["pretrain"] = {**section, "corpus": corpus}
            else:
                del model["pretrain"]
    return cfg


def write_yaml(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def job(rule: str, **wildcards: Any) -> Job:
    return rule, tuple(sorted((k, str(v)) for k, v in wildcards.items()))


def run_jobs(run: Any, rules: tuple[str, ...] = ("train", "predict", "evaluate")) -> set[Job]:
    """The jobs of one run (a repro.config.Run) for the given rules; a knowledge run's
    predictions are also exported in KILT's formats (its rule has no task wildcard)."""
    jobs = {job(rule, **run.fields()) for rule in rules}
    if run.task == "knowledge" and "evaluate" in rules:
        jobs.add(job("kilt_export", **{k: v for k, v in run.fields().items() if k != "task"}))
    return jobs


_HEADER = re.compile(r"^\s*(?:local)?rule (\w+):$")


def dry_run_blocks(output: str) -> list[tuple[str, str]]:
    """(rule, its lines) of every job a `snakemake -n` output lists, group members included."""
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in output.splitlines():
        m = _HEADER.match(line)
        if m:
            current = []
            blocks.append((m.group(1), current))
        elif current is not None:
            if not line.startswith(" ") or line.strip().startswith("["):
                current = None
            else:
                current.append(line)
    return [(rule, "\n".join(lines)) for rule, lines in blocks]


def planned_jobs(output: str) -> set[Job]:
    """Jobs listed by `snakemake -n` (rule and wildcards), without the target rule `all`."""
    jobs = set()
    for rule, body in dry_run_blocks(output):
        if rule == "all":
            continue
        m = re.search(r"^\s+wildcards: (.*)$", body, re.M)
        pairs = [kv.split("=", 1) for kv in m.group(1).split(", ")] if m else []
        jobs.add(job(rule, **dict(pairs)))
    return jobs


def plan(workdir: Path, config: Path) -> set[Job]:
    return planned_jobs(snakemake(workdir, "-n", config=config).stdout)


_COMPLETED: dict[str, Path] = {}


def completed_run(tmp_path_factory: Any, config: Path = TEST_CONFIG) -> Path:
    """A work directory where `config` ran to the end (built once per test session)."""
    key = str(config)
    if key not in _COMPLETED:
        work = tmp_path_factory.mktemp("completed")
        snakemake(work, config=config)
        _COMPLETED[key] = work
    return _COMPLETED[key]
