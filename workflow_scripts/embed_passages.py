"""Snakemake adapter: embed one shard of the test dataset's passages with the run's Embseq."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.retrieval import embed_shard
from repro.workflow import start

params = start(snakemake)  # noqa: F821
shard, shards = int(snakemake.wildcards.shard), int(snakemake.wildcards.shards)  # noqa: F821
summary = embed_shard(
    params["encoder"],
    Path(snakemake.input.passages),  # noqa: F821
    shard,
    shards,
    Path(snakemake.output.vectors[: -len(".npy")]),  # noqa: F821
    batch_size=int(params["batch_size"]),
)
print(summary)
