# The only adapter from config to jobs: runs, targets and each job's slice of config (as
# canonical JSON params, so that an edited value reruns exactly the jobs it touches).
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from repro import config as rc
from repro import runs
from repro.data.schema import SPLITS
from repro.io import canonical_json
from repro.report.ablations import ablation_axes
from repro.tasks import task_name
from repro.resources import gres, resource_function

rc.check_references(config)
if config["offline"]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

RUNS = rc.expand_runs(config)
TRAIN_RUNS = rc.training_runs(config)  # differ from RUNS where a dataset has train_on
TASKS = sorted({r.task for r in RUNS})

# Where run directories live: the one place to change it (repro.runs maps a run to its directory
# and back). RUN_ID: a run id with a wildcard per field, for the paths of logs and benchmarks.
RUNS_ROOT = runs.RUNS_ROOT
RUN_ID = runs.id_pattern()
KNOWLEDGE_RUN_ID = runs.id_pattern(task="knowledge")


def run_dir(run):
    return runs.run_dir(run, RUNS_ROOT)


def run_file(name, **fixed):
    """A file of a run directory as a rule's path pattern (wildcards for the fields not fixed)."""
    return f"{runs.dir_pattern(RUNS_ROOT, **fixed)}/{name}"


# metrics.strict: a metric model missing offline is printed now (also in a dry run) and stops
# a real run before its first job, not after days of training.
from repro.metrics.availability import stop_if_unavailable, strict_problems

METRIC_PROBLEMS = strict_problems(
    config, TASKS, {m.name for m in workflow.deployment_settings.deployment_method}
)
for _line in METRIC_PROBLEMS:
    print(f"metrics.strict: {_line}", file=sys.stderr)


onstart:
    stop_if_unavailable(METRIC_PROBLEMS)


# Multi-GPU training jobs: say how each will be launched (also in a dry run).
from repro.launch import launch_plan

for _line in launch_plan(config, TRAIN_RUNS):
    print(_line, file=sys.stderr)


wildcard_constraints:
    task="|".join(sorted({d["task"] for d in config["datasets"].values()})),
    dataset="[^/]+",
    model="[^/]+",
    method="[^/]+",
    variant="[^/]+",
    seed=r"\d+",
    shard=r"\d+",
    shards=r"\d+",


def run_of(wildcards):
    return rc.Run.from_wildcards(wildcards)


def source_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "source")


def filter_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "filter")


def base_params(wildcards):
    return rc.model_params(config, wildcards.model)


def train_params(wildcards):
    """The `train` job's config: Gen's alone for cosup's `separate` (stage gen)."""
    run = run_of(wildcards)
    stage = "gen" if "gen" in rc.training_stages(config, run) else "joint"
    return rc.train_params(config, run, stage)


def train_embseq_params(wildcards):
    return rc.train_params(config, run_of(wildcards), "embseq")


def predict_params(wildcards):
    return rc.predict_params(config, run_of(wildcards))


def evaluate_params(wildcards):
    return rc.evaluate_params(config, run_of(wildcards))


def comet_params(wildcards):
    return rc.comet_params(config, run_of(wildcards))


def comet_of(wildcards):
    """The run's COMET scores (translation runs, when metrics.comet.model is set)."""
    run = run_of(wildcards)
    return f"{run_dir(run)}/comet.json" if rc.scores_comet(config, run) else []


def model_resource(stage, name):
    """Resource `name` of a job of the {model}'s `stage` (train, decode, embed): sizes from
    models.<m>.resources, capped growth on retries (repro.resources)."""
    return resource_function(config, stage, name)


def train_split_of_dataset(wildcards):
    task = config["datasets"][wildcards.dataset]["task"]
    return f"results/data/{task}/{wildcards.dataset}/train.jsonl"


def trained_model(wildcards):
    """The model that decodes this run: its training run's (see datasets.<d>.train_on)."""
    return f"{run_dir(rc.training_run(config, run_of(wildcards)))}/model"


def embed_inputs(wildcards):
    """The passages, and the training output holding the run's Embseq (none when the run
    decodes with existing checkpoints)."""
    run = run_of(wildcards)
    inputs = {"passages": f"results/data/{run.task}/{run.dataset}/passages.jsonl"}
    trained = rc.cosup_models(config, run)["inputs"]
    if "embseq" in trained:  # `separate`: its own training job
        inputs["embseq"] = trained["embseq"]
    elif trained:  # model/embseq/ of the joint training
        inputs["model"] = trained["model"]
    return inputs


def encoder_params(wildcards):
    return rc.encoder_params(config, run_of(wildcards))


def passages_of(wildcards):
    """The passages the dataset retrieves from (its own, or those of its index.from)."""
    source = rc.index_dataset(config, wildcards.dataset)
    return f"results/data/{config['datasets'][source]['task']}/{source}/passages.jsonl"


def predict_inputs(wildcards):
    """The trained model (none for runs that decode with existing checkpoints), its base
    model (for the architecture), the test split and, for co-supervision, the passage index
    and its passages (see datasets.<d>.index.from) and the Embseq of `separate`."""
    run = run_of(wildcards)
    train = rc.training_run(config, run)
    inputs = {"test": f"results/data/{run.task}/{run.dataset}/test.jsonl"}
    if not rc.decode_only(config, run):
        inputs["model"] = trained_model(wildcards)
        inputs["base"] = f"results/models/{train.model}/{train.dataset}"
    if run.method == "cosup":
        source = rc.index_dataset(config, run.dataset)
        inputs["index"] = f"{run_dir(run.on(source))}/index"
        inputs["passages"] = passages_of(wildcards)
        inputs.update(rc.cosup_models(config, run)["inputs"])
    return inputs


def index_shards(wildcards):
    """The embedded shards of the dataset's passages (datasets.<d>.index.shards of them)."""
    n = config["datasets"][wildcards.dataset]["index"]["shards"]
    return [
        f"{run_dir(run_of(wildcards))}/index_shards/{k}-of-{n}.npy" for k in range(n)
    ]


def index_params(wildcards):
    return canonical_json(config["datasets"][wildcards.dataset]["index"])


def embed_params(wildcards):
    return config["datasets"][wildcards.dataset]["index"]["batch_size"]


def all_metrics():
    return [f"{run_dir(r)}/metrics.json" for r in RUNS]


def all_train_logs():
    return [f"{run_dir(r)}/train_log.jsonl" for r in TRAIN_RUNS]


def report_outputs():
    return expand("results/tables/{task}.{ext}", task=TASKS, ext=("md", "csv")) + [
        "results/plots/main_metric.png",
        "results/plots/training_curves.png",
    ]


def kilt_files():
    return [
        f"{run_dir(r)}/kilt/kilt_{kind}.jsonl"
        for r in RUNS
        if r.task == "knowledge"
        for kind in ("guess", "gold")
    ]


def get_final_output():
    data = [
        f"results/data/{d['task']}/{name}/filter_stats.json"
        for name, d in config["datasets"].items()
    ]
    return data + all_metrics() + kilt_files() + report_outputs()


# --- report inputs ---
# What the report rule reads and writes, decided from the config alone (outputs must be known
# when the DAG is built): per-run predictions, references, resolved configs; one ablation plot
# per axis with >= 2 values; the warmup-overlap histogram only when there are warmup runs.
ABLATIONS = ablation_axes(
    [rc.resolve(config, r) for r in RUNS], config["report"].get("ablations")
)
WARMUP_RUNS = [r for r in RUNS if r.method == "warmup"]


def all_predictions():
    return [f"{run_dir(r)}/predictions.jsonl" for r in RUNS]


def all_references():
    return sorted({f"results/data/{r.task}/{r.dataset}/test.jsonl" for r in RUNS})


def all_filter_stats():
    return [
        f"results/data/{d['task']}/{name}/filter_stats.json"
        for name, d in config["datasets"].items()
    ]


def published_file():
    """The published-numbers file: as given, else relative to the workflow; [] when unset."""
    path = config["report"].get("published")
    if not path:
        return []
    p = Path(path)
    return [str(p if p.is_absolute() or p.exists() else Path(workflow.basedir) / p)]


def report_params():
    """The report's own settings as canonical JSON. (Run configs are not in it: they would be
    copied into every result of the HTML report; an edit to one reruns that run's jobs, whose
    new metrics.json reruns the report.)"""
    rep = config["report"]
    return canonical_json(
        {
            "baseline": rep["baseline_method"],
            "baselines": rep["baselines"],
            "bootstrap_samples": rep["bootstrap_samples"],
            "bootstrap_seed": rep["bootstrap_seed"],
            "groups": rep["groups"],
            "ablations": ABLATIONS,
        }
    )


# the report() flag under another name: snakefmt takes a line starting `report(` for a directive
in_report = report


def _caption(name):
    return f"../report/{name}.rst"


def _run_labels(r):
    return {
        "dataset": r.dataset,
        "model": r.model,
        "method": r.method,
        "variant": r.variant,
        "seed": str(r.seed),
    }


def report_tables():
    out = []
    for task in TASKS:
        for ext, fmt in (
            ("html", "HTML"),
            ("csv", "CSV (tidy, one row per run and metric)"),
            ("tex", "LaTeX (booktabs)"),
            ("md", "Markdown"),
        ):
            out.append(
                in_report(
                    f"results/tables/{task}.{ext}",
                    caption=_caption("table"),
                    category="Tables",
                    subcategory=task_name(task),
                    labels={"table": task_name(task), "format": fmt},
                )
            )
    return out


def report_cells():
    return [f"results/tables/{task}_cells.csv" for task in TASKS]


def run_curve_plots():
    return [
        in_report(
            f"results/plots/training/{r.id}.png",
            caption=_caption("run_curve"),
            category="Plots",
            subcategory="Training curves",
            labels={"task": r.task, **_run_labels(r)},
        )
        for r in TRAIN_RUNS
    ]


def ablation_plots():
    return [
        in_report(
            f"results/plots/ablation_{a['name']}.png",
            caption=_caption("ablation"),
            category="Plots",
            subcategory="Ablations",
            labels={"axis": a.get("label") or a["name"]},
        )
        for a in ABLATIONS
    ]


def warmup_plots():
    if not WARMUP_RUNS:
        return []
    return [
        in_report(
            "results/plots/warmup_overlap.png",
            caption=_caption("warmup_overlap"),
            category="Plots",
            subcategory="Warmup analysis",
            labels={"figure": "warmup-word overlap with the reference"},
        )
    ]


def warmup_tables():
    if not WARMUP_RUNS:
        return []
    return [
        in_report(
            "results/tables/warmup_analysis.md",
            caption=_caption("warmup_analysis"),
            category="Tables",
            subcategory="Warmup analysis",
            labels={"table": "warmup analysis", "format": "Markdown"},
        ),
        "results/tables/warmup_analysis.csv",
    ]


def run_config_files():
    return [
        in_report(
            f"results/report/configs/{r.id}.json",
            caption=_caption("run_config"),
            category="Runs",
            subcategory=task_name(r.task),
            labels=_run_labels(r),
        )
        for r in RUNS
    ]


def plot_pdfs():
    pngs = ["results/plots/main_metric.png", "results/plots/training_curves.png"]
    pngs += [f"results/plots/training/{r.id}.png" for r in TRAIN_RUNS]
    pngs += [f"results/plots/ablation_{a['name']}.png" for a in ABLATIONS]
    pngs += ["results/plots/warmup_overlap.png"] if WARMUP_RUNS else []
    return [p[: -len(".png")] + ".pdf" for p in pngs]


# --- candidate pools (rules/pools.smk, repro.pools) ---
# A dataset with `pool` gets its test questions' candidates from pools.<p>: the filter reads
# them; the pool's jobs get their slice of pools.<p> as params.
from repro import pool_jobs as rp


def pool_files(wildcards):
    """The dataset's candidates and pooled passages (read by its filter); [] without a pool."""
    pool = rp.pool_of(config, wildcards.dataset)
    if pool is None:
        return []
    return [
        f"results/pools/{pool}/{wildcards.dataset}/{name}.jsonl"
        for name in ("candidates", "passages")
    ]


def pool_corpus_input(wildcards):
    """The chunked corpus a KILT knowledge-source pool reads; [] for a corpus file as given."""
    path, _ = rp.corpus_file(config, wildcards.pool)
    return [path] if path == f"results/pools/{wildcards.pool}/corpus.jsonl" else []


def pool_search_inputs(wildcards):
    task = config["datasets"][wildcards.dataset]["task"]
    return {
        "test": f"results/data/{task}/{wildcards.dataset}/raw/test.jsonl",
        "shards": [f"{p}.npy" for p in rp.shard_prefixes(config, wildcards.pool)],
        "corpus": pool_corpus_input(wildcards),
    }


def pool_corpus_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "corpus")


def pool_embed_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "embed")


def pool_search_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "search")


def pool_search_gpu(wildcards):
    return rp.pool_resources(config, wildcards.pool, stage="search")["gpu"]


def pool_embed_gpu(wildcards):
    return rp.pool_resources(config, wildcards.pool, stage="embed")["gpu"]


def pool_search_gres(wildcards):
    return gres(pool_search_gpu(wildcards))


def pool_embed_gres(wildcards):
    return gres(pool_embed_gpu(wildcards))


def pool_mem_mb(wildcards, attempt):
    return rp.pool_resources(config, wildcards.pool, attempt)["mem_mb"]


def pool_runtime(wildcards, attempt):
    return rp.pool_resources(config, wildcards.pool, attempt)["runtime"]


# --- pretraining of tiny models (rules/models.smk, repro.pretrain_jobs) ---
# A model with models.<m>.pretrain is pretrained once; its base models point to that checkpoint.
from repro import pretrain_jobs as pj


def pretrained_file(name):
    """A file of a model's pretraining directory, as a path pattern ({model} wildcard)."""
    return f"{pj.pretrained_dir('{model}')}/{name}"


def pretrain_corpus(wildcards):
    return pj.corpus_files(config, wildcards.model)


def base_model_inputs(wildcards):
    """The pretrained model, when the model pretrains; else the dataset's training split."""
    if pj.pretrains(config, wildcards.model):
        return {"pretrained": f"{pj.pretrained_dir(wildcards.model)}/model"}
    return {"train": train_split_of_dataset(wildcards)}
