"""Snakemake adapter: merge the embedded shards into the faiss index of the test dataset."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.retrieval import merge_shards
from repro.workflow import start

params = start(snakemake)  # noqa: F821
index = params["index"]
vectors = snakemake.input.vectors  # noqa: F821  (one shard: a string)
prefixes = [Path(p[: -len(".npy")]) for p in ([vectors] if isinstance(vectors, str) else vectors)]
summary = merge_shards(prefixes, Path(snakemake.output[0]), index["kind"], **index["params"])  # noqa: F821
print(summary)
