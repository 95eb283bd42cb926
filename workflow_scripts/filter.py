"""Snakemake adapter: filter one dataset's raw splits into normalized jsonl + filter_stats.json."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.data.filters import filter_dataset
from repro.workflow import start

params = start(snakemake)  # noqa: F821
raw_dir = Path(snakemake.input[0]).parent  # noqa: F821
out_dir = Path(snakemake.output.stats).parent  # noqa: F821
pool = snakemake.input.get("pool") or []  # noqa: F821  (candidates, passages of its pool)
p = params["filter"]
stats = filter_dataset(raw_dir, out_dir, p["task"], p["filter"], p.get("test_only", False),
                       name=snakemake.wildcards.dataset,  # noqa: F821
                       pool_dir=Path(pool[0]).parent if pool else None)
print(stats)
