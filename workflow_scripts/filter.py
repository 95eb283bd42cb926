"""Snakemake adapter: filter some raw splits of one dataset (rule filter: the training splits;
rule filter_test: the test split) into normalized jsonl, their passages and statistics."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.data.filters import filter_dataset
from repro.workflow import start

smk = snakemake  # noqa: F821
params = start(smk)
raw_dir = Path(smk.input[0]).parent
pool = smk.input.get("pool") or []  # candidates, passages of its pool (filter_test)
p = params["filter"]
splits = p["splits"]
stats = filter_dataset(raw_dir, Path(smk.output.stats).parent, p["task"], p["filter"],
                       p.get("test_only", False), name=smk.wildcards.dataset,
                       pool_dir=Path(pool[0]).parent if pool else None, splits=splits,
                       passages_name=Path(smk.output[len(splits)]).name,
                       stats_name=Path(smk.output.stats).name)
print(stats)
