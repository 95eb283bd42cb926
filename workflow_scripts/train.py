"""Snakemake adapter: train one run with its method."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.io import read_json
from repro.train import train_run
from repro.workflow import start

params = start(snakemake)  # noqa: F821
manifest = read_json(Path(snakemake.input.base) / "base.json")  # noqa: F821
summary = train_run(
    params["run"],
    manifest,
    Path(snakemake.input.data[0]).parent,  # noqa: F821
    Path(snakemake.output.model),  # noqa: F821
    Path(snakemake.output.log),  # noqa: F821
    Path(params["checkpoints"]),
)
print(summary)
