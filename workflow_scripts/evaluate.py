"""Snakemake adapter: every metric of the run's task -> metrics.json."""

import _src_path  # noqa: F401  (repro from src/)

from repro.io import write_json
from repro.metrics.evaluate import evaluate_files
from repro.provenance import provenance
from repro.workflow import start

params = start(snakemake)  # noqa: F821
cfg = params["metrics"]
result = evaluate_files(
    cfg["task"],
    snakemake.input.predictions,  # noqa: F821
    snakemake.input.references,  # noqa: F821
    cfg,
    snakemake.input.passages,  # noqa: F821
    snakemake.input.comet or None,  # noqa: F821
)
result["run"] = cfg["run"]
result["provenance"] = provenance(snakemake.params.metrics)  # noqa: F821
write_json(snakemake.output[0], result)  # noqa: F821
