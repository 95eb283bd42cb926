# The only adapter from config to jobs: runs, targets and each job's slice of config (as
# canonical JSON params, so that an edited value reruns exactly the jobs it touches).
import inspect
import os
import re
import sys
from pathlib import Path

# This workflow's own src/ first, found from this rule file (also when another workflow uses
# this one as a module: the main Snakefile's directory is then that workflow's).
WORKFLOW_DIR = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parent
sys.path.insert(0, str(WORKFLOW_DIR / "src"))

from repro import config as rc
from repro import param_keys
from repro import runs
from repro.data.schema import SPLITS
from repro.io import canonical_json
from repro.report.ablations import ablation_axes
from repro.tasks import other_tasks_metrics, task_name
from repro import resources as rres
from repro.resources import gres, resource_function

rc.validate_config(config)  # schema defaults, references, strict keys, method options


# --- the config's results root ---
# Everything this config makes (data, models, runs, tables, plots, logs, benchmarks) is under
# results_dir: set in the config, else derived from the config files' names (repro.runs), so
# that running another config never overwrites these tables or hands --report stale ones.
config["results_dir"] = config.get("results_dir") or runs.default_results_dir(
    workflow.configfiles
)
RESULTS = runs.results_dir(config)


def results(path):
    """A path under the config's results root."""
    return f"{RESULTS}/{path}"


if config["offline"]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

RUNS = rc.expand_runs(config)
TRAIN_RUNS = rc.training_runs(config)  # differ from RUNS where a dataset has train_on
TASKS = sorted({r.task for r in RUNS})

# Where run directories live: the one place to change it (repro.runs maps a run to its directory
# and back). RUN_ID: a run id with a wildcard per field, for the paths of logs and benchmarks.
RUNS_ROOT = runs.runs_root(config)
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
    warn_code_trigger()


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


def keyed(name, slice_of):
    """A job's config slice as named params: `name`, the canonical JSON `slice_of(wildcards)`
    the script reads (a derived param: it takes `input`, so Snakemake does not compare it), and
    its key slots, which Snakemake tracks: an edit reruns exactly the jobs it did, and a dry
    run's `reason:` line names the edited keys with their old and new values, not the whole
    slice twice (repro.param_keys)."""
    cache = {}

    def sliced(wildcards):
        """(the slice, its slots), computed once per job."""
        key = tuple(sorted(wildcards.items()))
        if key not in cache:
            whole = slice_of(wildcards)
            cache[key] = whole, param_keys.slots(whole)
        return cache[key]

    def whole(wildcards, input):
        return sliced(wildcards)[0]

    def slot(i):
        def value(wildcards):
            return sliced(wildcards)[1][i]

        # Snakemake inspects a param function's signature per job: given, it is not rebuilt
        value.__signature__ = SLOT_SIGNATURE
        return value

    names = param_keys.slot_names(name)
    return {name: whole, **{n: slot(i) for i, n in enumerate(names)}}


SLOT_SIGNATURE = inspect.signature(lambda wildcards: None)


def source_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "source")


def filter_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "filter")


def filter_test_params(wildcards):
    return rc.dataset_params(config, wildcards.dataset, "filter_test")


def model_names(kind):
    """A wildcard pattern of the config's models of `kind` (one that matches nothing if none)."""
    names = [re.escape(n) for n, m in config["models"].items() if m["kind"] == kind]
    return "|".join(names) if names else "(?!)"


TINY_MODELS = model_names("tiny")
HUB_MODELS = model_names("hf")


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


# Evaluate jobs that load the TRUE NLI model go to the rule evaluate_nli (one GPU, the memory
# of metrics.true_nli.resources), the others stay small CPU jobs (repro.resources).
TRUE_NLI_RUNS = rres.true_nli_constraints(config, RUNS)
TRUE_NLI_JOB = rres.true_nli_job(config)


def index_resource(name):
    """mem_mb or runtime of a build_index job, from the size of the shards it reads."""

    def resource(wildcards, input):
        return rres.index_job(input.size_mb)[name]

    return resource


def train_split_of_dataset(wildcards):
    task = config["datasets"][wildcards.dataset]["task"]
    return results(f"data/{task}/{wildcards.dataset}/train.jsonl")


def trained_model(wildcards):
    """The model that decodes this run: its training run's (see datasets.<d>.train_on)."""
    return f"{run_dir(rc.training_run(config, run_of(wildcards)))}/model"


def embed_inputs(wildcards):
    """The passages, and the training output holding the run's Embseq (none when the run
    decodes with existing checkpoints: then those, when local)."""
    run = run_of(wildcards)
    inputs = {"passages": results(f"data/{run.task}/{run.dataset}/test_passages.jsonl")}
    trained = rc.cosup_models(config, run)["inputs"]
    if "embseq" in trained:  # `separate`: its own training job
        inputs["embseq"] = trained["embseq"]
    elif trained:  # model/embseq/ of the joint training
        inputs["model"] = trained["model"]
    inputs["config_files"] = option_files(run, "decode")
    return inputs


def encoder_params(wildcards):
    return rc.encoder_params(config, run_of(wildcards))


def passages_of(wildcards):
    """The passages the dataset's test split retrieves from (its own and its pool's, or those
    of its index.from)."""
    source = rc.index_dataset(config, wildcards.dataset)
    return results(
        f"data/{config['datasets'][source]['task']}/{source}/test_passages.jsonl"
    )


def predict_inputs(wildcards):
    """The trained model (none for runs that decode with existing checkpoints), its base
    model (for the architecture), the test split and, for co-supervision, the passage index
    and its passages (see datasets.<d>.index.from) and the Embseq of `separate`."""
    run = run_of(wildcards)
    train = rc.training_run(config, run)
    inputs = {"test": results(f"data/{run.task}/{run.dataset}/test.jsonl")}
    if not rc.decode_only(config, run):
        inputs["model"] = trained_model(wildcards)
        inputs["base"] = results(f"models/{train.model}/{train.dataset}")
    if run.method == "cosup":
        source = rc.index_dataset(config, run.dataset)
        inputs["index"] = f"{run_dir(run.on(source))}/index"
        inputs["passages"] = passages_of(wildcards)
        inputs.update(rc.cosup_models(config, run)["inputs"])
        inputs["config_files"] = option_files(run, "decode")
    return inputs


def index_shards(wildcards, ext="npy"):
    """The embedded shards of the dataset's passages (datasets.<d>.index.shards of them):
    their vectors (.npy), or with ext "ids.json" their passage ids."""
    n = config["datasets"][wildcards.dataset]["index"]["shards"]
    return [
        f"{run_dir(run_of(wildcards))}/index_shards/{k}-of-{n}.{ext}" for k in range(n)
    ]


def index_shard_ids(wildcards):
    return index_shards(wildcards, "ids.json")


def index_params(wildcards):
    return rc.index_build_params(config, wildcards.dataset)


def embed_params(wildcards):
    return config["datasets"][wildcards.dataset]["index"]["batch_size"]


def all_metrics():
    return [f"{run_dir(r)}/metrics.json" for r in RUNS]


def all_train_logs():
    return [f"{run_dir(r)}/train_log.jsonl" for r in TRAIN_RUNS]


def report_outputs():
    return expand(results("tables/{task}.{ext}"), task=TASKS, ext=("md", "csv")) + [
        results("plots/main_metric.png"),
        results("plots/training_curves.png"),
    ]


def kilt_files():
    return [
        f"{run_dir(r)}/kilt/kilt_{kind}.jsonl"
        for r in RUNS
        if r.task == "knowledge"
        for kind in ("guess", "gold")
    ]


def get_final_output():
    return all_filter_stats() + all_metrics() + kilt_files() + report_outputs()


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
    return sorted({results(f"data/{r.task}/{r.dataset}/test.jsonl") for r in RUNS})


def all_filter_stats():
    """The statistics of both filter jobs of every dataset (training splits, test split)."""
    return [
        results(f"data/{d['task']}/{name}/{stats}.json")
        for name, d in config["datasets"].items()
        for stats in ("filter_stats", "filter_stats_test")
    ]


def published_file():
    """The published-numbers file: as given, else relative to the workflow; [] when unset."""
    path = config["report"].get("published")
    if not path:
        return []
    p = Path(path)
    return [str(p if p.is_absolute() or p.exists() else WORKFLOW_DIR / p)]


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
            "titles": rep["titles"],
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
                    results(f"tables/{task}.{ext}"),
                    caption=_caption("table"),
                    category="Tables",
                    subcategory=task_name(task),
                    labels={"table": task_name(task), "format": fmt},
                )
            )
    return out


def report_cells():
    return [results(f"tables/{task}_cells.csv") for task in TASKS]


def run_curve_plots():
    return [
        in_report(
            results(f"plots/training/{r.id}.png"),
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
            results(f"plots/ablation_{a['name']}.png"),
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
            results("plots/warmup_overlap.png"),
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
            results("tables/warmup_analysis.md"),
            caption=_caption("warmup_analysis"),
            category="Tables",
            subcategory="Warmup analysis",
            labels={"table": "warmup analysis", "format": "Markdown"},
        ),
        results("tables/warmup_analysis.csv"),
    ]


def run_config_files():
    return [
        in_report(
            results(f"report/configs/{r.id}.json"),
            caption=_caption("run_config"),
            category="Runs",
            subcategory=task_name(r.task),
            labels=_run_labels(r),
        )
        for r in RUNS
    ]


def plot_pdfs():
    pngs = [results("plots/main_metric.png"), results("plots/training_curves.png")]
    pngs += [results(f"plots/training/{r.id}.png") for r in TRAIN_RUNS]
    pngs += [results(f"plots/ablation_{a['name']}.png") for a in ABLATIONS]
    pngs += [results("plots/warmup_overlap.png")] if WARMUP_RUNS else []
    return [p[: -len(".png")] + ".pdf" for p in pngs]


# --- where the results are: printed when a run ends ---
from repro.report.summary import where_lines


def summary_files():
    files = report_outputs() + warmup_tables() + ablation_plots() + warmup_plots()
    return [str(f) for f in files]


onsuccess:
    for _line in where_lines(RESULTS, summary_files()):
        print(_line)


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
        results(f"pools/{pool}/{wildcards.dataset}/{name}.jsonl")
        for name in ("candidates", "passages")
    ]


def pool_corpus_input(wildcards):
    """The chunked corpus a KILT knowledge-source pool reads; [] for a corpus file as given."""
    path, _ = rp.corpus_file(config, wildcards.pool)
    return [path] if path == results(f"pools/{wildcards.pool}/corpus.jsonl") else []


def pool_search_inputs(wildcards):
    task = config["datasets"][wildcards.dataset]["task"]
    return {
        "test": results(f"data/{task}/{wildcards.dataset}/raw/test.jsonl"),
        "shards": [f"{p}.npy" for p in rp.shard_prefixes(config, wildcards.pool)],
        "corpus": pool_corpus_input(wildcards),
        "config_files": pool_search_files(wildcards),
    }


def pool_corpus_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "corpus")


def pool_embed_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "embed")


def pool_search_params(wildcards):
    return rp.stage_params(config, wildcards.pool, "search")


# Pools whose embedding or search jobs ask for a GPU: the rules *_gpu (the profile's GPU
# partition) make them.
GPU_POOLS = {
    stage: rres.name_pattern(rp.gpu_pools(config, stage))
    for stage in ("embed", "search")
}


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


# --- what else reruns a job: its code and the files the config names ---
# Each rule's `code` param is a content hash of its workflow script and of the repro modules
# the script reaches (per run's method for the rules that run one): an edited module reruns
# the jobs that run it, while a mere mtime change (git checkout, copy) reruns nothing, as the
# profiles drop Snakemake's mtime-based code trigger (rerun-triggers). Local files named in the
# config are inputs of the jobs that read them (repro.config_files).
from functools import lru_cache

from repro import code_tracking
from repro import config_files as cf
from snakemake.settings.enums import RerunTrigger


def code_param(script, per_method=False):
    """The `code` param of a rule running workflow_scripts/<script>.py."""
    if not per_method:
        return code_tracking.script_code(script)

    def code(wildcards):
        return code_tracking.script_code(script, wildcards.method)

    return code


def source_files(wildcards):
    """The local files the dataset's source names (read by its fetch job)."""
    return cf.paths(cf.source_files(config, wildcards.dataset))


def model_files(wildcards):
    """A local checkpoint directory of models.<m>.path (read by its base_model job)."""
    return cf.paths(cf.model_files(config, wildcards.model))


def option_files(run, job):
    """Local checkpoints the run's method options name, for its `job` (train or decode)."""
    return list(_option_files(run, job))


@lru_cache
def _option_files(run, job):
    options = rc.method_options(config, run)
    return tuple(cf.paths(cf.option_files(options, f"methods.{run.method}", job)))


def train_option_files(wildcards):
    return option_files(run_of(wildcards), "train")


def metric_model_files(wildcards):
    """Local models of the metrics the run's task computes (read by its evaluate job)."""
    others = other_tasks_metrics(wildcards.task)
    return cf.paths(cf.metric_files(config, cf.evaluate_sections(config, others)))


def comet_model_files(wildcards):
    return cf.paths(cf.metric_files(config, ["comet"]))


def pool_corpus_files(wildcards):
    return cf.paths(cf.pool_files(config, wildcards.pool, "corpus"))


def pool_embed_files(wildcards):
    return cf.paths(
        cf.pool_files(
            config,
            wildcards.pool,
            "embed",
            int(wildcards.shard),
            int(wildcards.shards),
        )
    )


def pool_search_files(wildcards):
    return cf.paths(cf.pool_files(config, wildcards.pool, "search"))


# A missing one is reported now (also in a dry run), with its key; Snakemake then stops with
# the missing input files of the jobs that need them.
for _line in cf.missing_files(cf.all_named(config, RUNS + TRAIN_RUNS), config):
    print(f"missing file named in the config: {_line}", file=sys.stderr)


def warn_code_trigger():
    """Run without the profiles' rerun-triggers, Snakemake's own code trigger reruns every
    job of a script whose mtime changed: say so."""
    if RerunTrigger.CODE in workflow.rerun_triggers:
        print(
            "rerun-triggers include `code`: a workflow script whose mtime changed (a git "
            "checkout) reruns its rule; the profiles set `mtime params input software-env` "
            "(each rule's `code` param tracks the code it runs)",
            file=sys.stderr,
        )


# --- pretraining of tiny models (rules/models.smk, repro.pretrain_jobs) ---
# A model with models.<m>.pretrain is pretrained once; its base models point to that checkpoint.
from repro import pretrain_jobs as pj


def pretrained_file(name):
    """A file of a model's pretraining directory, as a path pattern ({model} wildcard)."""
    return f"{pj.pretrained_dir(config, '{model}')}/{name}"


def pretrain_corpus(wildcards):
    return pj.corpus_files(config, wildcards.model)


def base_model_inputs(wildcards):
    """The pretrained model, when the model pretrains; else the dataset's training split."""
    if pj.pretrains(config, wildcards.model):
        return {"pretrained": f"{pj.pretrained_dir(config, wildcards.model)}/model"}
    return {"train": train_split_of_dataset(wildcards)}
