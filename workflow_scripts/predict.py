"""Snakemake adapter: decode the test split with the run's trained model and method."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.io import read_json
from repro.predict import predict_run
from repro.workflow import start

smk = snakemake  # noqa: F821
params = start(smk)
arch = read_json(Path(smk.input.base) / "base.json")["arch"]
extra = {k: Path(smk.input[k]) for k in ("index", "passages") if k in smk.input.keys()}
summary = predict_run(
    params["run"], arch, Path(smk.input.model), Path(smk.input.test), Path(smk.output[0]), extra
)
print(summary)
