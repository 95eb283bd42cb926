"""Snakemake adapter: fetch one dataset's raw splits (hf | local | synthetic)."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.data.sources import fetch, write_fetch
from repro.workflow import start

params = start(snakemake)  # noqa: F821
result = fetch(params["source"]["source"], params["source"]["task"])
write_fetch(result, Path(snakemake.output[0]).parent)  # noqa: F821
