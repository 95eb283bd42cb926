"""Typed view of the pipeline config: expansion into runs, per-stage resolved params.

A run is (task, dataset, model, method, variant, seed). Each stage of a run sees only the slice of
config it depends on, serialised as canonical JSON, so an edited value reruns exactly the jobs it
touches (Snakemake's params rerun trigger compares these strings).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from repro.errors import ConfigError  # noqa: F401  (re-exported: rc.ConfigError)
from repro.io import canonical_json
from repro.runs import Run, run_dir, runs_root  # Run: also what the rules call rc.Run
from repro.tasks import other_tasks_metrics

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
# Keys of a model entry that do not change what the model is (they must not trigger reruns).
NOT_MODEL_IDENTITY = ("training", "resources")
# Keys of a dataset entry that do not change the data (kilt_task and knowledge_metrics only
# pick the metrics; train_on and index only say which model and index its test split is
# decoded with; instruction is part of the prompt, not of the data: it is in the runs'
# training params).
NOT_DATA_IDENTITY = ("training", "kilt_task", "knowledge_metrics", "train_on", "index",
                     "instruction")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; values of `override` win. Inputs are not modified."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | Path, validate: bool = True) -> dict[str, Any]:
    """Read a YAML config and validate it (filling schema defaults) as the Snakefile does."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    if validate:
        validate_config(config)
    return config


def validate_config(config: dict[str, Any]) -> None:
    """Schema validation with defaults filled in, then the cross-references between sections
    and the checks of repro.config_checks (override keys, method options, model paths); a
    fault is a ConfigError naming the key."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from repro.config_checks import check_config, schema_error

    try:
        validate(config, str(SCHEMA_PATH), set_default=True)
    except WorkflowError:  # its message holds the whole schema and config: name the key
        message = schema_error(config)
        if message is None:
            raise
        raise ConfigError(message) from None
    check_references(config)
    check_config(config, [(r, method_options(config, r)) for r in expand_runs(config)])


def check_references(config: dict[str, Any]) -> None:
    """Every name an experiment uses must be defined, and every model's resources grantable
    (repro.resources.check_resources); raise ConfigError naming the key."""
    from repro.resources import ResourceError, check_resources

    try:
        check_resources(config)
    except ResourceError as e:
        raise ConfigError(str(e)) from None
    for i, exp in enumerate(config["experiments"]):
        for section, key in (("datasets", "datasets"), ("models", "models")):
            for name in exp[key]:
                if name not in config[section]:
                    known = ", ".join(sorted(config[section]))
                    raise ConfigError(
                        f"experiments[{i}].{key}: unknown {section[:-1]} '{name}' "
                        f"(defined under `{section}`: {known})"
                    )
    for name, d in config["datasets"].items():
        target = d.get("train_on")
        if target is None:
            continue
        if target not in config["datasets"]:
            raise ConfigError(f"datasets.{name}.train_on: unknown dataset '{target}'")
        if config["datasets"][target]["task"] != d["task"]:
            raise ConfigError(f"datasets.{name}.train_on: '{target}' is a "
                              f"{config['datasets'][target]['task']} dataset, not {d['task']}")
        if config["datasets"][target].get("train_on"):
            raise ConfigError(f"datasets.{name}.train_on: '{target}' itself trains on another "
                              "dataset; name that one")
    for name, d in config["datasets"].items():
        source = (d.get("index") or {}).get("from")
        if source is None or source == name:
            continue
        other = config["datasets"].get(source)
        if other is None or other["task"] != d["task"]:
            raise ConfigError(f"datasets.{name}.index.from: '{source}' is not a {d['task']} "
                              "dataset of this config")
        if train_dataset(config, source) != train_dataset(config, name) and not all(
                decode_only(config, r) for r in expand_runs(config)
                if r.dataset in (name, source)):
            raise ConfigError(f"datasets.{name}.index.from: '{source}' trains on another "
                              "dataset, so its runs' Embseq differs; set the same train_on")
        if (other.get("index") or {}).get("from") not in (None, source):
            raise ConfigError(f"datasets.{name}.index.from: '{source}' itself takes its index "
                              "from another dataset; name that one")
    for name, d in config["datasets"].items():
        pool = d.get("pool")
        if pool is not None and pool not in (config.get("pools") or {}):
            raise ConfigError(f"datasets.{name}.pool: unknown pool '{pool}' (defined under "
                              f"`pools`: {', '.join(sorted(config.get('pools') or {}))})")
        if pool is not None and d["task"] != "knowledge":
            raise ConfigError(f"datasets.{name}.pool: only knowledge datasets have candidate "
                              "pools")
    for name, model in config["models"].items():
        if model["kind"] == "hf" and not model.get("path"):
            raise ConfigError(f"models.{name}.path: required for kind 'hf' (hub id or local path)")
    check_ignored_keys(config)
    from repro.pretrain_jobs import check_pretrain

    check_pretrain(config)


def check_ignored_keys(config: dict[str, Any]) -> None:
    """Settings the workflow would silently ignore are errors naming the key: an index setting
    beside `index.from` (the other dataset's index is used), and an experiment's `training` or
    variant settings for a run an earlier experiment defines (the first one wins)."""
    defaults: dict[str, Any] | None = None  # read from the schema only when needed
    for name, d in config["datasets"].items():
        index = d.get("index") or {}
        if not index.get("from") or set(index) == {"from"}:
            continue
        defaults = defaults or _index_defaults()
        for key in sorted(set(index) - {"from"}):
            if index[key] != defaults.get(key):
                raise ConfigError(
                    f"datasets.{name}.index.{key}: ignored beside index.from (the index of "
                    f"'{index['from']}' is used): set it in datasets.{index['from']}.index")
    expanded = expand_runs(config)
    runs = dict.fromkeys([*expanded, *(training_run(config, r) for r in expanded)])
    for run in runs:
        holders = _experiments_of(config, run)
        first, settings = holders[0]
        for i, other in holders[1:]:
            for key, label in (("variant", f"methods.{run.method}.{run.variant}"),
                               ("training", "training")):
                if other[key] != settings[key]:
                    raise ConfigError(
                        f"experiments[{i}].{label}: run {run.id} is already defined by "
                        f"experiments[{first}], whose settings win; this experiment's "
                        f"differ ({other[key]} vs {settings[key]}) and would be ignored: make "
                        "them equal or give the variant another name")


def _experiments_of(config: dict[str, Any], run: Run,
                    first: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(index, {"variant": overrides, "training": experiment training}) of every experiment
    holding `run` (see _experiment_overrides), in config order; the first one alone with
    `first`."""
    out = []
    for i, exp in enumerate(config["experiments"]):
        if first and out:
            break
        variants = exp["methods"].get(run.method, {})
        trains = {train_dataset(config, d) for d in exp["datasets"]}
        if ((run.dataset in exp["datasets"] or run.dataset in trains)
                and run.model in exp["models"] and run.variant in variants
                and run.seed in exp.get("seeds", [0])):
            out.append((i, {"variant": variants[run.variant] or {},
                            "training": exp.get("training") or {}}))
    return out


def _index_defaults() -> dict[str, Any]:
    """The schema defaults of datasets.<d>.index (what validation fills in)."""
    from repro.config_checks import schema

    index = schema()["properties"]["datasets"]["additionalProperties"]["properties"]["index"]
    return {k: v["default"] for k, v in index["properties"].items() if "default" in v}


def expand_runs(config: dict[str, Any]) -> list[Run]:
    """All runs of all experiments, deduplicated, in config order."""
    runs: dict[Run, None] = {}
    for exp in config["experiments"]:
        for dataset in exp["datasets"]:
            task = config["datasets"][dataset]["task"]
            for model in exp["models"]:
                for method, variants in exp["methods"].items():
                    for variant in variants:
                        for seed in exp.get("seeds", [0]):
                            runs[Run(task, dataset, model, method, variant, seed)] = None
    return list(runs)


def train_dataset(config: dict[str, Any], dataset: str) -> str:
    """The dataset whose training split (and base model) trains the runs of `dataset`: its
    `train_on`, else itself."""
    return config["datasets"][dataset].get("train_on") or dataset


def training_run(config: dict[str, Any], run: Run) -> Run:
    """The run whose trained model decodes `run`'s test split (itself unless its dataset has
    `train_on`: then one model serves every dataset that trains on the same data)."""
    return run.on(train_dataset(config, run.dataset))


def index_dataset(config: dict[str, Any], dataset: str) -> str:
    """The dataset whose passages (and passage index) `dataset` retrieves from: its
    `index.from`, else itself (test sets over one corpus share one index per model)."""
    return (config["datasets"][dataset].get("index") or {}).get("from") or dataset


def method_options(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The run's method options (methods.<m> merged with its variant's), without the variant's
    training/decoding overrides."""
    variant, _ = _experiment_overrides(config, run)
    extra = {k: v for k, v in variant.items() if k not in ("training", "decoding")}
    return deep_merge(config.get("methods", {}).get(run.method, {}), extra)


def training_stages(config: dict[str, Any], run: Run) -> tuple[str, ...]:
    """The training jobs of a run: ("joint",) for a method trained in one job; cosup's
    `separate` trains Gen and Embseq in two ("gen", "embseq"); a cosup run that decodes with
    existing `checkpoints` trains nothing ()."""
    if run.method != "cosup":
        return ("joint",)
    from repro.methods.cosup_options import training_stages as cosup_stages

    return cosup_stages(method_options(config, run), run.variant)


def training_runs(config: dict[str, Any]) -> list[Run]:
    """The runs that are trained, deduplicated, in config order (runs that decode with
    existing checkpoints train nothing)."""
    trained = (training_run(config, r) for r in expand_runs(config))
    return [r for r in dict.fromkeys(trained) if training_stages(config, r)]


def cosup_models(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Where a cosup run's (Gen, Embseq) pair is: {"gen", "embseq", "tokenizer", "inputs"}
    (inputs: the training outputs that hold them, for the rules' inputs). Trained: the training
    run's model/ (with model/embseq/, or, for `separate`, the separate embseq/ job output);
    with the option `checkpoints`: those paths or hub ids, nothing trained."""
    opts = method_options(config, run)
    if opts.get("checkpoints"):
        ck = opts["checkpoints"]
        return {"gen": ck["gen"], "embseq": ck["embseq"], "tokenizer": ck.get("tokenizer"),
                "inputs": {}}
    train = training_run(config, run)
    train_dir = run_dir(train, runs_root(config))
    gen = f"{train_dir}/model"
    if "embseq" in training_stages(config, train):
        emb = f"{train_dir}/embseq"
        return {"gen": gen, "embseq": emb, "tokenizer": None,
                "inputs": {"model": gen, "embseq": emb}}
    return {"gen": gen, "embseq": f"{gen}/embseq", "tokenizer": None, "inputs": {"model": gen}}


def encoder_params(config: dict[str, Any], run: Run) -> str:
    """What an embed_passages job of a cosup run reads (repro.retrieval.load_encoder): a
    trained Embseq directory (its saved settings), or a checkpoint pair with the settings of
    the run's options (and Gen's tokenizer, checked against Embseq's)."""
    from repro.methods.cosup_options import encoder_settings, supervision_of

    models = cosup_models(config, run)
    if models["inputs"]:
        return canonical_json({"embseq": models["embseq"]})
    opts = method_options(config, run)
    return canonical_json(
        {"embseq": models["embseq"], "gen": models["gen"], "tokenizer": models["tokenizer"],
         "settings": encoder_settings(opts),
         "reads_gen_sequences": supervision_of(opts, run.variant) == "separate"})


def decode_only(config: dict[str, Any], run: Run) -> bool:
    """True for a run that trains nothing (it decodes with existing checkpoints)."""
    return not training_stages(config, training_run(config, run))


def _experiment_overrides(config: dict[str, Any], run: Run) -> tuple[dict, dict]:
    """(variant overrides, experiment training overrides) of the first experiment holding run
    (a training run belongs to the experiments of the datasets that train on its dataset;
    check_ignored_keys makes sure the others agree)."""
    holders = _experiments_of(config, run, first=True)
    if not holders:
        raise ConfigError(f"no experiment defines run {run.id}")
    settings = holders[0][1]
    return settings["variant"], settings["training"]


def resolve(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The run's full resolved config: data, model, method options, training, decoding, metrics.

    Training precedence (later wins): `training` < models.<m>.training < datasets.<d>.training
    < the experiment's `training` < the variant's `training`.
    """
    dataset = config["datasets"][run.dataset]
    model = config["models"][run.model]
    variant, exp_training = _experiment_overrides(config, run)
    variant = dict(variant)
    var_training = variant.pop("training", {})
    var_decoding = variant.pop("decoding", {})
    training = config.get("training", {})
    for layer in (model.get("training", {}), dataset.get("training", {}), exp_training):
        training = deep_merge(training, layer)
    training = deep_merge(training, var_training)
    training["instruction"] = dataset.get("instruction", "")
    method_options = deep_merge(config.get("methods", {}).get(run.method, {}), variant)
    return {
        "run": run.fields(),
        "data": {k: v for k, v in dataset.items() if k not in NOT_DATA_IDENTITY},
        "model": {k: v for k, v in model.items() if k not in NOT_MODEL_IDENTITY},
        "method": {"name": run.method, "options": method_options},
        "training": training,
        "decoding": deep_merge(config.get("decoding", {}), var_decoding),
        "metrics": {
            "task": run.task,
            "target_lang": dataset.get("target_lang"),
            **({"kilt_task": dataset.get("kilt_task", "qa"),
                "knowledge_metrics": dataset.get("knowledge_metrics") or {}}
               if run.task == "knowledge" else {}),
            **config.get("metrics", {}),
        },
    }


# Training keys that decoding reads too (the prompt of a record).
PROMPT_KEYS = ("max_source_len", "prompt_suffix", "prompt_template", "instruction")
# Training keys that change no trained model: not in the training job's params (editing them
# retrains nothing); the job reads them from the config (`training_settings`). save_steps only
# says how often a checkpoint is written to resume from.
UNTRACKED_TRAINING = ("save_steps",)
# Index settings read when searching (predict params), not when building the index.
SEARCH_PARAMS = ("nprobe", "ef_search")


def train_params(config: dict[str, Any], run: Run, stage: str = "joint") -> str:
    """The config one training job of `run` depends on: the run, the method options its stage
    reads (repro.methods.options_read_by; co-supervision's per stage, see
    repro.methods.cosup_options.stage_options: `separate`'s Gen and Embseq jobs do not rerun
    for each other's options) and the training settings but UNTRACKED_TRAINING. The data and
    the base model reach the job as its input files (the filtered splits, the base model
    directory), not as params: an edit to them reruns the jobs that make those files first."""
    from repro.methods import options_read_by

    r = resolve(config, run)
    options = r["method"]["options"]
    if run.method == "cosup":
        from repro.methods.cosup_options import stage_options

        options = stage_options(options, run.variant, stage)
    else:
        options = options_read_by(run.method, options, "train")
    training = {k: v for k, v in r["training"].items() if k not in UNTRACKED_TRAINING}
    return canonical_json({"run": r["run"], "method": {"name": run.method, "options": options},
                           "training": training})


def training_settings(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """The run's UNTRACKED_TRAINING settings (read by the training job from the config)."""
    training = resolve(config, run)["training"]
    return {k: training[k] for k in UNTRACKED_TRAINING if k in training}


def predict_params(config: dict[str, Any], run: Run) -> str:
    """The config a decoding job depends on: the run, the method options decoding reads, the
    decoding settings, the training keys of the prompt, the model family (the architecture of
    checkpoints decoded without training) and, for co-supervision, the search settings of the
    passage index (SEARCH_PARAMS: set at load time, so editing them rebuilds no index)."""
    from repro.methods import options_read_by

    r = resolve(config, run)
    options = options_read_by(run.method, r["method"]["options"], "decode")
    out = {"run": r["run"], "method": {"name": run.method, "options": options},
           "decoding": r["decoding"],
           "training": {k: r["training"][k] for k in PROMPT_KEYS if k in r["training"]},
           "model": {"family": r["model"]["family"]}}
    if run.method == "cosup":
        out["search"] = search_settings(config, index_dataset(config, run.dataset))
    return canonical_json(out)


def search_settings(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The SEARCH_PARAMS given in datasets.<d>.index.params (the index's build defaults
    otherwise)."""
    params = (config["datasets"][dataset].get("index") or {}).get("params") or {}
    return {k: params[k] for k in SEARCH_PARAMS if k in params}


def index_build_params(config: dict[str, Any], dataset: str) -> str:
    """What the build_index job of `dataset`'s passages depends on: the index kind and its
    build-time params (the shards are its inputs; batch_size is the embedding jobs';
    SEARCH_PARAMS are the decoding jobs')."""
    index = config["datasets"][dataset].get("index") or {}
    params = {k: v for k, v in (index.get("params") or {}).items() if k not in SEARCH_PARAMS}
    return canonical_json({"kind": index.get("kind", "flat"), "params": params})


def evaluate_params(config: dict[str, Any], run: Run) -> str:
    """The run's metrics settings, without the sections of metrics other tasks compute (so
    that editing metrics.bertscore does not rescore translation runs); anything else in
    `metrics` is kept."""
    r = resolve(config, run)
    others = other_tasks_metrics(run.task)
    kept = {k: v for k, v in r["metrics"].items() if k not in others}
    if "comet" in kept:  # where the COMET interpreter lives, its GPUs: no score changes
        kept["comet"] = {k: v for k, v in kept["comet"].items() if k not in ("python", "gpus")}
    if "true_nli" in kept:  # nor what its job asks a cluster for
        kept["true_nli"] = _without(kept["true_nli"], "resources")
    return canonical_json({"run": r["run"], **kept})


def _without(section: dict[str, Any] | None, key: str) -> dict[str, Any]:
    return {k: v for k, v in (section or {}).items() if k != key}


def scores_comet(config: dict[str, Any], run: Run) -> bool:
    """Whether the run has a COMET job: a translation run, with metrics.comet.model set."""
    return run.task == "translation" and bool((config.get("metrics", {}).get("comet") or {})
                                              .get("model"))


def comet_params(config: dict[str, Any], run: Run) -> str:
    """The comet rule's slice: the run, metrics.comet (without `python`, where the interpreter
    lives, and `gpus`, a resource: neither changes a score) and metrics.strict."""
    metrics = config.get("metrics", {})
    comet = {k: v for k, v in (metrics.get("comet") or {}).items() if k not in ("python", "gpus")}
    return canonical_json({"run": run.fields(), "comet": comet,
                           "strict": bool(metrics.get("strict", False))})


# Keys of a source read by scripts/predownload.py alone (not by the fetch job).
NOT_FETCHED = ("download",)


def dataset_params(config: dict[str, Any], dataset: str, part: str) -> str:
    """What a data job of one dataset depends on, with its task: `source` (the fetch job; the
    source without NOT_FETCHED), `filter` (the job filtering the training splits, with
    `test_only` for a dataset nothing trains on: its training splits may then be empty) or
    `filter_test` (the job filtering the test split: caps.test and expect_counts.test, the
    only filter settings the test split reads)."""
    from repro.data.filters import TEST_SPLITS, TRAINING_SPLITS

    d = config["datasets"][dataset]
    if part == "source":
        source = {k: v for k, v in d["source"].items() if k not in NOT_FETCHED}
        return canonical_json({"task": d["task"], "source": source})
    if part not in ("filter", "filter_test"):
        raise ValueError(f"unknown dataset part {part!r}")
    splits = TEST_SPLITS if part == "filter_test" else TRAINING_SPLITS
    cfg = dict(d.get("filter") or {})
    for key in ("caps", "expect_counts"):
        kept = {s: n for s, n in (cfg.pop(key, None) or {}).items()
                if s in splits or s not in TEST_SPLITS + TRAINING_SPLITS}
        if kept:
            cfg[key] = kept
    if part == "filter_test":  # the content filters and dedup clean the training split only
        cfg = {k: v for k, v in cfg.items() if k in ("caps", "expect_counts")}
    extra = {"test_only": True} if part == "filter" and not trains_here(config, dataset) else {}
    return canonical_json({"task": d["task"], "filter": cfg, "splits": list(splits), **extra})


def trains_here(config: dict[str, Any], dataset: str) -> bool:
    """Does some run train on this dataset's training split? Not if it trains on another
    (train_on), nor if its runs all decode with existing checkpoints."""
    if config["datasets"][dataset].get("train_on"):
        return False
    runs = [r for r in expand_runs(config) if train_dataset(config, r.dataset) == dataset]
    return not runs or any(not decode_only(config, r) for r in runs)


def model_params(config: dict[str, Any], model: str) -> str:
    m = config["models"][model]
    return canonical_json({k: v for k, v in m.items() if k not in NOT_MODEL_IDENTITY})


def model_resources(config: dict[str, Any], model: str, attempt: int = 1,
                    stage: str = "train") -> dict[str, int]:
    """A job's gpu, mem_mb and runtime (minutes) for attempt `attempt`; `stage` is "train",
    "decode" or "embed" (see repro.resources: each has its own sizes and retry caps)."""
    from repro.resources import job_resources

    return job_resources(config, model, stage, attempt)
