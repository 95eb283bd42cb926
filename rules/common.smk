# The only adapter from config to jobs: runs, targets and each job's slice of config (as
# canonical JSON params, so that an edited value reruns exactly the jobs it touches).
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from repro import config as rc
from repro.data.schema import SPLITS

rc.check_references(config)
if config["offline"]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

RUNS = rc.expand_runs(config)
TASKS = sorted({r.task for r in RUNS})


wildcard_constraints:
    task="|".join(sorted({d["task"] for d in config["datasets"].values()})),
    dataset="[^/]+",
    model="[^/]+",
    method="[^/]+",
    variant="[^/]+",
    seed=r"\d+",


def run_of(wildcards):
    return rc.Run.from_wildcards(wildcards)


def source_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "source")


def filter_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "filter")


def base_params(wildcards):
    return rc.model_params(config, wildcards.model)


def train_params(wildcards):
    return rc.train_params(config, run_of(wildcards))


def predict_params(wildcards):
    return rc.predict_params(config, run_of(wildcards))


def evaluate_params(wildcards):
    return rc.evaluate_params(config, run_of(wildcards))


def train_gpu(wildcards):
    return rc.model_resources(config, wildcards.model)["gpu"]


def train_mem_mb(wildcards, attempt):
    return rc.model_resources(config, wildcards.model, attempt)["mem_mb"]


def train_runtime(wildcards, attempt):
    return rc.model_resources(config, wildcards.model, attempt)["runtime"]


def train_split_of_dataset(wildcards):
    task = config["datasets"][wildcards.dataset]["task"]
    return f"results/data/{task}/{wildcards.dataset}/train.jsonl"


def all_metrics():
    return [f"{r.dir}/metrics.json" for r in RUNS]


def all_train_logs():
    return [f"{r.dir}/train_log.jsonl" for r in RUNS]


def report_outputs():
    return expand("results/tables/{task}.{ext}", task=TASKS, ext=("md", "csv")) + [
        "results/plots/main_metric.png",
        "results/plots/training_curves.png",
    ]


def get_final_output():
    data = [
        f"results/data/{d['task']}/{name}/filter_stats.json"
        for name, d in config["datasets"].items()
    ]
    return data + all_metrics() + report_outputs()
