"""Snakemake adapter: COMET of a translation run -> comet.json (merged by the evaluate rule).

Runs in the rule's conda environment (envs/comet.yaml) or, without --sdm conda, in the main
one, which hands the scoring to the .venv-comet interpreter (or metrics.comet.python).
"""

import _src_path  # noqa: F401  (repro from src/)

from repro.io import write_json
from repro.metrics.comet import score_files
from repro.workflow import start

params = start(snakemake)  # noqa: F821
python = snakemake.config["metrics"]["comet"].get("python")  # noqa: F821  (not a param)
result = score_files(
    snakemake.input.predictions,  # noqa: F821
    snakemake.input.references,  # noqa: F821
    params["comet"],
    python,
    snakemake.threads,  # noqa: F821
)
write_json(snakemake.output[0], result)  # noqa: F821
