"""Start a training job in as many processes as its GPUs: one per GPU under `torchrun`.

A training rule asks for `gpu` GPUs (models.<m>.resources.gpu). With more than one, the
workflow script writes the job (resolved run config and paths) to a JSON file and runs

    python -m torch.distributed.run --standalone --nproc_per_node K -m repro.train_cli JOB.json

so each rank reads the same job (Snakemake's `script:` copy and its pickled `snakemake` object
stay in the parent). With one GPU, or on CPU, the job trains in the script's own process.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import repro

log = logging.getLogger(__name__)

TRAIN_MODULE = "repro.train_cli"
JOB_FILE = "launch.json"
# After SIGTERM (SLURM's early signal, preemption) torchrun waits this long for its ranks to
# save a checkpoint and exit before it kills them (its default, 30 s, cuts off the write of a
# 13.5B-parameter checkpoint); SLURM's time limit or preemption grace time bounds it anyway.
SHUTDOWN_SECONDS = 1800
# Set to 1 where a job's GPUs exist for the scheduler only (a test cluster's fake GPUs): a
# k-GPU job then trains on the CPU in k gloo processes, the multi-GPU code path.
FAKE_GPUS_ENV = "REPRO_FAKE_GPUS"
SRC = str(Path(repro.__file__).resolve().parents[1])


class LaunchError(RuntimeError):
    """The processes of a multi-GPU training job failed; their log says why."""


def is_launched() -> bool:
    """True inside a process started by torchrun (it sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def n_processes(gpus: int, visible: int | None = None) -> int:
    """Processes for a job that asked for `gpus` GPUs: one per GPU the job can see (a node
    may show fewer than asked for), 1 on CPU (`gpus` with REPRO_FAKE_GPUS=1)."""
    if visible is None:
        import torch

        visible = torch.cuda.device_count()
        if not visible and gpus > 1 and os.environ.get(FAKE_GPUS_ENV) == "1":
            log.warning("no CUDA device: %d gloo processes on the CPU (%s=1)", gpus,
                        FAKE_GPUS_ENV)
            visible = gpus
    if gpus > visible > 0:
        log.warning("the job asked for %d GPUs but sees %d; starting %d processes", gpus,
                    visible, visible)
    return max(1, min(gpus, visible))


def requested_gpus(resources: Any) -> int:
    """GPUs a job asked for: its `gpu` resource, else the count of a `gres` request such as
    "gpu:8" or "gpu:a100:8" (the profile's alternative to --gpus), else 0."""
    gpu = int(getattr(resources, "gpu", 0) or 0)
    gres = str(getattr(resources, "gres", "") or "")
    if gpu or not gres.startswith("gpu"):
        return gpu
    last = gres.split(":")[-1]
    return int(last) if last.isdigit() and ":" in gres else 1


def needs_torchrun(n_procs: int, strategy: str, cuda: bool) -> bool:
    """Several processes, or FSDP on one GPU (its checkpoints load only under FSDP), and not
    already a torchrun child."""
    return not is_launched() and (n_procs > 1 or (strategy == "fsdp" and cuda))


def launch_command(n_procs: int, module: str, args: Sequence[str], torchrun: bool | None = None,
                   python: str = sys.executable) -> list[str]:
    """The command running `python -m module args` in n_procs processes on this node."""
    if torchrun is None:
        torchrun = n_procs > 1
    if not torchrun:
        return [python, "-m", module, *args]
    return [python, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n_procs}", f"--shutdown-timeout={SHUTDOWN_SECONDS}",
            "-m", module, *args]


def launch_plan(config: dict[str, Any], runs: Sequence[Any]) -> list[str]:
    """One line per training run whose model asks for several GPUs: its GPUs, memory, time and
    the command its job runs (Snakemake prints these when it plans the workflow)."""
    from repro.config import model_resources, training_stages
    from repro.runs import run_dir, runs_root

    lines = []
    for run in runs:
        res = model_resources(config, run.model)
        if res["gpu"] <= 1:
            continue
        for stage in training_stages(config, run):  # cosup `separate`: a second job, Embseq
            rule, ckpt = (("train_embseq", "checkpoints_embseq") if stage == "embseq"
                          else ("train", "checkpoints"))
            job_file = f"{run_dir(run, runs_root(config))}/{ckpt}/launch.json"
            cmd = launch_command(res["gpu"], "repro.train_cli", [job_file], python="python")
            lines.append(f"{rule} {run.id}: {res['gpu']} GPUs, {res['mem_mb']} MB, "
                         f"{res['runtime']} min: {' '.join(cmd)}")
    return lines


def write_job(job: dict[str, Any], path: Path) -> Path:
    """The job as JSON (paths as strings) for the ranks to read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, indent=1, sort_keys=True, default=str) + "\n",
                    encoding="utf-8")
    return path


def _stream(f: Any) -> Any:
    """A file object subprocess can write to (the job's log), else None (inherit)."""
    try:
        f.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    f.flush()
    return f


def run_processes(cmd: list[str]) -> None:
    """Run cmd with src/ on PYTHONPATH, output to this process's stdout/stderr (the job log),
    SIGTERM passed on (SLURM preemption: the ranks checkpoint and stop); raise LaunchError."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    log.info("launching: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env, stdout=_stream(sys.stdout), stderr=_stream(sys.stderr))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    try:
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if rc != 0:
        raise LaunchError(f"{cmd[-1]}: training processes exited with code {rc} (a SIGTERM "
                          "leaves a checkpoint: rerun to resume); see the log above")


def train(job: dict[str, Any], gpus: int) -> dict[str, Any] | None:
    """Train the job (see repro.train_cli) in this process, or under torchrun in one process
    per GPU; the summary of rank 0, None when it ran in other processes."""
    import torch

    from repro import train_cli

    n = n_processes(gpus)
    strategy = job["resolved"]["training"].get("distributed", {}).get("strategy", "auto")
    if not needs_torchrun(n, strategy, torch.cuda.is_available()):
        return train_cli.run_job(job)
    path = write_job(job, Path(job["ckpt_dir"]) / JOB_FILE)
    run_processes(launch_command(n, TRAIN_MODULE, [str(path)], torchrun=True))
    return None
