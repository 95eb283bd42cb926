"""Candidate pools as jobs: which pool a dataset uses, where a pool's files are, each pool job's
params (its rerun trigger) and resources. Light on purpose: Snakemake imports it while it
parses the workflow (rules/pools.smk); the embedding and search are in repro.pools."""

from __future__ import annotations

from typing import Any

from repro.io import canonical_json
from repro.runs import results_dir

# --- config --------------------------------------------------------------------------------

def pool_of(config: dict[str, Any], dataset: str) -> str | None:
    """The pool that gives `dataset`'s test questions their candidates (None: no pool; the
    name is checked by repro.config.check_references)."""
    return config["datasets"][dataset].get("pool")


def corpus_file(config: dict[str, Any], pool: str) -> tuple[str, str]:
    """(path, readable format) of the pool's corpus: the chunked jsonl for KILT's source."""
    corpus = config["pools"][pool]["corpus"]
    if corpus["format"] == "kilt_knowledgesource":
        return f"{results_dir(config)}/pools/{pool}/corpus.jsonl", "jsonl"
    return corpus["path"], corpus["format"]


def stage_params(config: dict[str, Any], pool: str, stage: str) -> str:
    """Canonical JSON of what a pool stage's output depends on (its rerun trigger): `corpus`
    (the chunking), `embed` (corpus, retriever but its query batch size, or none for
    precomputed embeddings, embeddings, shards, and the corpus file read), `search` (all of it
    and k). Download lists and resources are left out."""
    spec = config["pools"][pool]

    def strip(section: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in section.items() if k != "download"}

    if stage == "corpus":
        return canonical_json(strip(spec["corpus"]))
    keys = ("corpus", "retriever", "embeddings", "shards") + (("k",) if stage == "search" else ())
    if stage not in ("embed", "search"):
        raise ValueError(f"unknown pool stage {stage!r}")
    out = {**{k: strip(spec[k]) if isinstance(spec[k], dict) else spec[k] for k in keys},
           "corpus_file": corpus_file(config, pool)}
    if stage == "embed":
        out.update(_embed_only(spec, out["retriever"]))
    return canonical_json(out)


def _embed_only(spec: dict[str, Any], retriever: dict[str, Any]) -> dict[str, Any]:
    """The retriever as an embedding job reads it: not at all when it converts precomputed
    embeddings, else without the query batch size (a search setting)."""
    if (spec.get("embeddings") or {}).get("precomputed"):
        return {"retriever": {}}
    return {"retriever": {k: v for k, v in retriever.items() if k != "query_batch_size"}}


def pool_resources(config: dict[str, Any], pool: str, attempt: int = 1,
                   stage: str = "search") -> dict[str, int]:
    """gpu, mem_mb, runtime (minutes) of attempt `attempt` of a pool job from
    pools.<p>.resources: memory and time grow as attempt x the first request up to
    `max_mem_mb` / `max_runtime` (default: the first request, no growth; as for model jobs,
    repro.resources); converting precomputed embeddings (`embed`) needs no GPU."""
    spec = config["pools"][pool]
    res = spec.get("resources") or {}
    gpu = res.get("gpu", 0)
    if stage == "embed" and (spec.get("embeddings") or {}).get("precomputed"):
        gpu = 0
    mem, runtime = res.get("mem_mb", 8000), res.get("runtime", 60)
    return {"gpu": gpu, "mem_mb": min(mem * attempt, res.get("max_mem_mb") or mem),
            "runtime": min(runtime * attempt, res.get("max_runtime") or runtime)}


def gpu_pools(config: dict[str, Any], stage: str) -> list[str]:
    """The pools whose `stage` (embed, search) jobs ask for a GPU: the rules
    pool_embeddings_gpu and search_pools_gpu run them (the GPU partition of the profile)."""
    return [p for p in config.get("pools") or {} if pool_resources(config, p, stage=stage)["gpu"]]


def shard_prefixes(config: dict[str, Any], pool: str) -> list[str]:
    n = config["pools"][pool]["shards"]
    return [f"{results_dir(config)}/pools/{pool}/embeddings/{k}-of-{n}" for k in range(n)]
