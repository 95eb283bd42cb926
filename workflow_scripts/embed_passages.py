"""Snakemake adapter: embed one shard of the test dataset's passages with the run's Embseq."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.retrieval import embed_shard
from repro.workflow import start

start(snakemake)  # noqa: F821
shard, shards = int(snakemake.wildcards.shard), int(snakemake.wildcards.shards)  # noqa: F821
summary = embed_shard(
    Path(snakemake.input.model) / "embseq",  # noqa: F821
    Path(snakemake.input.passages),  # noqa: F821
    shard,
    shards,
    Path(snakemake.output.vectors[: -len(".npy")]),  # noqa: F821
    batch_size=int(snakemake.params.batch_size),  # noqa: F821
)
print(summary)
