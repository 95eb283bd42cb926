"""Snakemake adapter: one shard of a pool's corpus embeddings (embedded, or converted from
Contriever's precomputed files)."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.pools import embed_shard
from repro.workflow import start

spec = start(snakemake)["pool"]  # noqa: F821
corpus, fmt = spec["corpus_file"]
shard, shards = int(snakemake.wildcards.shard), int(snakemake.wildcards.shards)  # noqa: F821
prefix = Path(snakemake.output.vectors[: -len(".npy")])  # noqa: F821
print(embed_shard(spec, corpus, fmt, shard, shards, prefix))
