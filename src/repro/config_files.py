"""The files a config names, as the inputs of the jobs that read them.

A local data file, passage corpus, ids2text, model directory, metric model or pool corpus named
in the config is an input of each job that reads it: replacing it reruns those jobs (and what
depends on them), and a missing one stops Snakemake while it builds the DAG, naming the file,
instead of failing a job hours later. A directory stands for the files in it (hidden ones left
out), so that a file replaced inside it counts too.

Keys that take a hub id or a local path (models, retrievers, metric models, checkpoints) are
local when they look local (repro.config_checks.looks_local: absolute, `./`, `../`, `~`, a
trailing `/`, or existing relative to the working directory); a hub id stays a param (it is in
the job's params).

Each function returns [(config key, path)]; `paths` keeps the paths. Light on purpose: Snakemake
calls these while it builds the DAG.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from repro.config_checks import looks_local
from repro.data.schema import SPLITS

Named = list[tuple[str, str]]
GLOB_CHARS = ("*", "?", "[")
# Metric sections naming a model, and the job that loads it (metrics.comet: the comet job)
METRIC_MODELS = ("bertscore", "comet", "grounding", "true_nli")


def expand(path: str) -> list[str]:
    """A file as itself; a directory as the files in it (recursively, hidden names left out;
    the directory itself when it holds none); a glob pattern as its matches; a missing path as
    itself (Snakemake then reports it missing)."""
    p = Path(path).expanduser()
    if any(c in path for c in GLOB_CHARS) and not p.exists():
        return sorted(glob.glob(str(p), recursive=True)) or [str(p)]
    if not p.is_dir():
        return [str(p)]
    found = []
    for root, dirs, files in os.walk(p):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
    return found or [str(p)]


def paths(named: Named) -> list[str]:
    """The files of `named` (directories expanded), sorted, without repeats."""
    return sorted({f for _, path in named for f in expand(path)})


def _maybe_local(key: str, ref: Any) -> Named:
    return [(key, ref)] if isinstance(ref, str) and ref and looks_local(ref) else []


# --- datasets ------------------------------------------------------------------------------

def _data_files(key: str, value: Any) -> Named:
    """`data_files` of datasets.load_dataset: a path, a list or {split: path or list}."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, list):
        return [(f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _data_files(f"{key}.{k}", v)]
    return []


def _spec_files(key: str, spec: dict[str, Any]) -> Named:
    """The files one split spec (or a `join`) reads."""
    out: Named = []
    if spec.get("kind", "hf") == "local":
        if spec.get("file"):
            out.append((f"{key}.file", spec["file"]))
        if spec.get("convert") == "cosup_official" and spec.get("ids2text"):
            out.append((f"{key}.ids2text", spec["ids2text"]))
    else:
        out += _maybe_local(f"{key}.path", spec.get("path"))
        out += _data_files(f"{key}.data_files", spec.get("data_files"))
    join = spec.get("join")
    if isinstance(join, dict):
        out += _spec_files(f"{key}.join", join)
    return out


def _split_key(source: dict[str, Any], split: str, origin: str | None) -> str:
    over = (source.get("splits") or {}).get(split)
    base = f"splits.{split}" if isinstance(over, dict) else ""
    if origin == "fallback":
        base = f"{base}.fallback" if base and "fallback" in over else "fallback"
    return base


def source_files(config: dict[str, Any], dataset: str) -> Named:
    """The local files the fetch job of `dataset` reads: each split's file (the `fallback`'s
    when the primary file does not exist and the fallback's does), ids2text, passages, local
    hf dataset folders and data_files, joins. `download` is not read by the fetch job (only by
    scripts/predownload.py): it is neither an input nor a param."""
    from repro.data.sources import _with_fallback, split_source

    source = config["datasets"][dataset]["source"]
    prefix = f"datasets.{dataset}.source"
    if source.get("kind") == "synthetic":
        return []
    out: Named = [(f"{prefix}.passages", source["passages"])] if source.get("passages") else []
    for split in SPLITS:
        spec, origin = _with_fallback(split_source(source, split))
        if spec.get("absent"):
            continue
        if origin == "fallback" and not _exists(spec.get("file")):
            # neither file is there: name the primary one (what predownload fetches first)
            spec, origin = {**split_source(source, split), "fallback": None}, "primary"
        base = _split_key(source, split, origin)
        if not base and spec.get("kind") == "local" and "file" not in source:
            named = _spec_files(prefix, spec)
            out += [(k.replace(f"{prefix}.file", f"{prefix}.files.{split}"), v) for k, v in named]
        else:
            out += _spec_files(f"{prefix}.{base}".rstrip("."), spec)
    return list(dict.fromkeys(out))


def _exists(path: str | None) -> bool:
    return bool(path) and Path(path).expanduser().exists()


# --- models, methods, metrics, pools -----------------------------------------------------

def model_files(config: dict[str, Any], model: str) -> Named:
    """A local checkpoint directory of models.<m>.path (kind hf): read by its base_model job."""
    m = config["models"][model]
    return _maybe_local(f"models.{model}.path", m.get("path")) if m["kind"] == "hf" else []


def option_files(options: dict[str, Any], key: str, job: str) -> Named:
    """Local checkpoints named by a run's co-supervision options: `embseq_path` (read by the
    training job, `job` "train") and `checkpoints` gen/embseq/tokenizer (read by decoding and
    passage embedding, `job` "decode")."""
    if job == "train":
        return _maybe_local(f"{key}.embseq_path", options.get("embseq_path"))
    ck = options.get("checkpoints") or {}
    return [item for part in ("gen", "embseq", "tokenizer")
            for item in _maybe_local(f"{key}.checkpoints.{part}", ck.get(part))]


def metric_files(config: dict[str, Any], sections: list[str]) -> Named:
    """Local metric models of the given `metrics` sections (e.g. a TRUE NLI checkpoint)."""
    metrics = config.get("metrics") or {}
    return [item for s in sections if s in METRIC_MODELS
            for item in _maybe_local(f"metrics.{s}.model", (metrics.get(s) or {}).get("model"))]


def pool_files(config: dict[str, Any], pool: str, stage: str, shard: int | None = None,
               shards: int | None = None) -> Named:
    """What a pool job reads besides other jobs' outputs: stage `corpus` (the knowledge source
    it chunks), `embed` (the corpus file and the retriever, or the precomputed embedding file
    of `shard`), `search` (the corpus file and the retriever)."""
    spec = config["pools"][pool]
    key = f"pools.{pool}"
    corpus = spec["corpus"]
    chunked = corpus["format"] == "kilt_knowledgesource"
    if stage == "corpus":
        return [(f"{key}.corpus.path", corpus["path"])] if chunked else []
    out: Named = [] if chunked else [(f"{key}.corpus.path", corpus["path"])]
    retriever = _maybe_local(f"{key}.retriever.path", (spec.get("retriever") or {}).get("path"))
    pre = (spec.get("embeddings") or {}).get("precomputed")
    if stage == "embed" and pre:
        return [(f"{key}.embeddings.precomputed", _precomputed_file(pre, shard or 0, shards))]
    return out + retriever


def _precomputed_file(directory: str, shard: int, shards: int | None) -> str:
    """Shard k's file of Contriever's precomputed embeddings (the k-th in name order), or the
    directory when it is missing or holds another number of files (the job then says so)."""
    from repro.corpus import PRECOMPUTED_GLOB

    files = sorted(str(p) for p in Path(directory).expanduser().glob(PRECOMPUTED_GLOB)
                   if p.is_file())
    return files[shard] if shards is not None and len(files) == shards else directory


def evaluate_sections(config: dict[str, Any], other_tasks: set[str]) -> list[str]:
    """The metric sections naming a model that an evaluate job of a task reads (`other_tasks`:
    the sections only other tasks read; a spans grounding is judged by true_nli, not by
    grounding.model)."""
    grounding = (config.get("metrics") or {}).get("grounding") or {}
    skip = {"comet"} | ({"grounding"} if grounding.get("kind") == "spans" else set())
    return [s for s in METRIC_MODELS if s not in other_tasks and s not in skip]


# --- all of them, for the DAG-time check ----------------------------------------------------

def all_named(config: dict[str, Any], runs: list[Any]) -> Named:
    """Every local file or directory the config names (for the `runs`' method options)."""
    from repro.config import method_options

    named = [n for d in config["datasets"] for n in source_files(config, d)]
    named += [n for m in config["models"] for n in model_files(config, m)]
    for run in dict.fromkeys(runs):
        options = method_options(config, run)
        for job in ("train", "decode"):
            named += option_files(options, f"methods.{run.method}", job)
    named += metric_files(config, list(METRIC_MODELS))
    for pool in config.get("pools") or {}:
        for stage in ("corpus", "embed", "search"):
            named += pool_files(config, pool, stage)
    return list(dict.fromkeys(named))


def missing_files(named: Named, config: dict[str, Any]) -> list[str]:
    """One line per named path that does not exist (once per path): the key, the path and,
    for a dataset or pool with a `download` list, how to get it."""
    lines = []
    seen: set[str] = set()
    for key, path in named:
        if path in seen or Path(path).expanduser().exists():
            continue
        seen.add(path)
        parts = key.split(".")
        section = (config.get(parts[0]) or {}).get(parts[1]) if len(parts) > 1 else None
        spec = (section or {}).get("source" if parts[0] == "datasets" else "corpus") or {}
        fetchable = bool(spec.get("download")) or any(
            (v or {}).get("download") for v in (section or {}).values() if isinstance(v, dict))
        hint = " (scripts/predownload.py fetches the `download` files)" if fetchable else ""
        lines.append(f"{key}: {path} does not exist{hint}")
    return lines
