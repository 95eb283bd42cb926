"""Snakemake adapter: decode the test split with the run's trained model and method."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.io import read_json
from repro.predict import predict_run
from repro.workflow import start

params = start(snakemake)  # noqa: F821
arch = read_json(Path(snakemake.input.base) / "base.json")["arch"]  # noqa: F821
summary = predict_run(
    params["run"],
    arch,
    Path(snakemake.input.model),  # noqa: F821
    Path(snakemake.input.test),  # noqa: F821
    Path(snakemake.output[0]),  # noqa: F821
)
print(summary)
