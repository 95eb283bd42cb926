"""Snakemake adapter: each test question's top-k pool over a pool's embedded corpus."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.pools import search_pools
from repro.workflow import start

spec = start(snakemake)["pool"]  # noqa: F821
corpus, fmt = spec["corpus_file"]
smk = snakemake  # noqa: F821
prefixes = [Path(p[: -len(".npy")]) for p in smk.input.shards]
out_dir = Path(smk.output.candidates).parent
print(search_pools(spec, Path(smk.input.test), prefixes, corpus, fmt, out_dir, smk.threads))
