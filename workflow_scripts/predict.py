"""Snakemake adapter: decode the test split with the run's model (trained, or the checkpoints
its options name) and method."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.io import read_json
from repro.models import arch_of
from repro.predict import predict_run
from repro.workflow import start

smk = snakemake  # noqa: F821
params = start(smk)
names = smk.input.keys()
arch = (read_json(Path(smk.input.base) / "base.json")["arch"] if "base" in names
        else arch_of(params["run"]["model"]["family"]))
model = Path(smk.input.model) if "model" in names else None
extra = {k: Path(smk.input[k]) for k in ("index", "passages", "embseq") if k in names}
summary = predict_run(params["run"], arch, model, Path(smk.input.test), Path(smk.output[0]),
                      extra)
print(summary)
