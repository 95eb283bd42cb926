"""What one job of a model asks a cluster for: GPUs, memory, time, and the early signal of a
training job. The one place where the sizes in `models.<m>.resources` become job resources.

Three kinds of jobs use a model, each sized by its own entry:

- `train` (the entry itself: `gpu`, `mem_mb`, `runtime`): one training run on one node; k > 1
  GPUs train in k processes (repro.launch).
- `decode` (`resources.decode`): the decoding (predict) job of a run.
- `embed` (`resources.embed`): one shard of the passages embedded by the run's Embseq.

Retries (attempt 2, 3, ... of a failed job) never ask for more than a node grants: memory grows
as attempt x mem_mb up to `max_mem_mb` (default mem_mb: no growth, as for a whole-node job); a
decoding or embedding job's time grows likewise up to `max_runtime` (it starts over), a
training job's time never grows (it resumes from its last checkpoint). A training job asks
SLURM for SIGTERM `stop_seconds` before its time limit (`--signal=TERM@N`): the training
catches it (repro.train.StopOnSignal), saves a checkpoint and stops; the retry resumes there.

Two jobs without a model of their own are sized here too: an evaluate job that loads the TRUE
NLI model (11B parameters; `metrics.true_nli.resources`, routed to the rule `evaluate_nli` by
`true_nli_constraints`), and an index job, sized by the embeddings it reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

STAGES = ("train", "decode", "embed")
DEFAULTS = {"gpu": 0, "mem_mb": 4000, "runtime": 60, "stop_seconds": 300}
TRUE_NLI_JOB = {"gpu": 1, "mem_mb": 64000, "runtime": 240}
"""Defaults of metrics.true_nli.resources: google/t5_xxl_true_nli_mixture is T5-11B, 22.6 GB of
weights in bf16 on its GPU (a GPU of 40 GB or more leaves room for a batch of 1,024-token
inputs); the host memory holds the model while it is built in bf16 before it moves to the GPU,
plus one checkpoint shard being read."""
NEVER = "(?!)"  # a wildcard constraint no value matches


class ResourceError(ValueError):
    """An inconsistent `models.<m>.resources` entry; the message names the key."""


def stage_entry(config: dict[str, Any], model: str, stage: str = "train") -> dict[str, int]:
    """The resolved sizes of one kind of job of a model: gpu, mem_mb, runtime, max_mem_mb,
    max_runtime (and stop_seconds for training). Decoding and embedding default to one GPU of
    the training request (none for a CPU model) with that GPU's share of the memory and the
    training time; their maxima default to their own sizes."""
    if stage not in STAGES:
        raise ValueError(f"unknown job kind {stage!r} (one of {', '.join(STAGES)})")
    res = config["models"][model].get("resources") or {}
    train = {k: res.get(k, v) for k, v in DEFAULTS.items()}
    if stage == "train":
        return {**train, "max_mem_mb": res.get("max_mem_mb") or train["mem_mb"],
                "max_runtime": train["runtime"]}
    own = res.get(stage) or {}
    gpu = own.get("gpu", min(train["gpu"], 1))
    mem = own.get("mem_mb", train["mem_mb"] // max(train["gpu"], 1))
    runtime = own.get("runtime", train["runtime"])
    return {"gpu": gpu, "mem_mb": mem, "runtime": runtime,
            "max_mem_mb": own.get("max_mem_mb") or mem,
            "max_runtime": own.get("max_runtime") or runtime}


def job_resources(config: dict[str, Any], model: str, stage: str = "train",
                  attempt: int = 1) -> dict[str, int]:
    """gpu, mem_mb and runtime (minutes) of attempt `attempt` (1, 2, ...) of a job."""
    e = stage_entry(config, model, stage)
    mem = min(e["mem_mb"] * attempt, e["max_mem_mb"])
    runtime = e["runtime"] if stage == "train" else min(e["runtime"] * attempt,
                                                         e["max_runtime"])
    return {"gpu": e["gpu"], "mem_mb": mem, "runtime": runtime}


def gres(gpus: int) -> str:
    """The generic-resource request for `gpus` GPUs ("gpu:N"), "" for none."""
    return f"gpu:{gpus}" if gpus > 0 else ""


def stop_signal(config: dict[str, Any], model: str) -> str:
    """sbatch's option asking for SIGTERM stop_seconds before the training job's time limit
    (to all processes of its job steps: the training processes and torchrun)."""
    return f"--signal=TERM@{stage_entry(config, model)['stop_seconds']}"


def resource_function(config: dict[str, Any], stage: str, name: str) -> Callable[..., Any]:
    """A rule's resource function for jobs with a {model} wildcard: `name` (gpu, gres,
    mem_mb, runtime, or slurm_extra for training: the early signal) of attempt `attempt` of
    that model's `stage` job."""
    if name == "slurm_extra" and stage != "train":
        raise ValueError("only training jobs ask for an early signal")

    def resource(wildcards: Any, attempt: int) -> int | str:
        if name == "slurm_extra":
            return stop_signal(config, wildcards.model)
        res = job_resources(config, wildcards.model, stage, attempt)
        return gres(res["gpu"]) if name == "gres" else res[name]

    resource.__name__ = f"{stage}_{name}"
    return resource


def check_resources(config: dict[str, Any]) -> None:
    """Raise ResourceError, naming the key, for sizes no retry or job can be granted: a cap
    below the first request, an early signal no shorter than the time limit (the job would
    stop at once, every attempt), a decoding or embedding job on several GPUs (they run in
    one process)."""
    for model in config["models"]:
        for stage in STAGES:
            e = stage_entry(config, model, stage)
            key = f"models.{model}.resources" + ("" if stage == "train" else f".{stage}")
            if e["max_mem_mb"] < e["mem_mb"]:
                raise ResourceError(f"{key}.max_mem_mb: {e['max_mem_mb']} is below mem_mb "
                                    f"{e['mem_mb']} (the cap of a retry's memory)")
            if e["max_runtime"] < e["runtime"]:
                raise ResourceError(f"{key}.max_runtime: {e['max_runtime']} is below runtime "
                                    f"{e['runtime']}")
            if stage != "train" and e["gpu"] > 1:
                raise ResourceError(f"{key}.gpu: {e['gpu']}; a {stage} job runs in one "
                                    "process on at most one GPU")
        e = stage_entry(config, model)
        if e["stop_seconds"] >= e["runtime"] * 60:
            raise ResourceError(
                f"models.{model}.resources.stop_seconds: {e['stop_seconds']} s is not shorter "
                f"than the training time limit (runtime {e['runtime']} min): SLURM would "
                "signal every attempt at its start")


# --- jobs without a model of their own -----------------------------------------------------


def true_nli_job(config: dict[str, Any]) -> dict[str, int]:
    """gpu, mem_mb and runtime of an evaluate job that loads the TRUE NLI model
    (metrics.true_nli.resources over TRUE_NLI_JOB). Scoring jobs are not retried."""
    res = ((config.get("metrics") or {}).get("true_nli") or {}).get("resources") or {}
    return {k: int(res.get(k, v)) for k, v in TRUE_NLI_JOB.items()}


def loads_true_nli(config: dict[str, Any], run: Any) -> bool:
    """Does the run's evaluate job load the TRUE NLI model? A knowledge run with
    metrics.true_nli.model set and a metric that needs it (repro.metrics.availability)."""
    from repro.metrics.availability import true_nli_metrics

    metrics = config.get("metrics") or {}
    if run.task != "knowledge" or not (metrics.get("true_nli") or {}).get("model"):
        return False
    dataset = config["datasets"][run.dataset]
    return bool(true_nli_metrics(metrics, dataset.get("knowledge_metrics"), run.method))


def name_pattern(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly these names (none: matching nothing)."""
    names = sorted(set(names))
    return "|".join(re.escape(n) for n in names) if names else NEVER


def true_nli_constraints(config: dict[str, Any], runs: Iterable[Any]) -> dict[str, str]:
    """Wildcard constraints (task, dataset, method) of the evaluate jobs that load the TRUE NLI
    model: the rule `evaluate_nli` takes them (one GPU, its memory), `evaluate` the others (a
    small CPU job). Constraints are per wildcard: a run of a dataset and a method that each
    appear among the TRUE runs, though not together, also goes to `evaluate_nli` (not in the
    paper configs, whose knowledge runs are all cosup)."""
    nli = [r for r in runs if loads_true_nli(config, r)]
    return {"task": "knowledge" if nli else NEVER,
            "dataset": name_pattern(r.dataset for r in nli),
            "method": name_pattern(r.method for r in nli)}


INDEX_OVERHEAD_MB = 4000


def index_job(input_mb: float) -> dict[str, int]:
    """mem_mb and runtime of the job that builds a test set's passage index from its embedded
    shards (`input_mb`, float32): the shards, their concatenation and the index each hold the
    vectors once (repro.retrieval.merge_shards; compressed kinds hold less), plus the
    interpreter, faiss and the ids; an hour plus 10 minutes per GB read (HNSW links slowly)."""
    mb = max(0, math.ceil(input_mb))
    return {"mem_mb": 3 * mb + INDEX_OVERHEAD_MB, "runtime": 60 + math.ceil(10 * mb / 1000)}
