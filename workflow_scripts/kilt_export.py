"""Snakemake adapter: a knowledge run's predictions and gold data in KILT's formats."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.metrics.kilt_export import export_run
from repro.workflow import start

smk = snakemake  # noqa: F821
start(smk)
guess, gold = export_run(smk.input.predictions, Path(smk.input.references).parent,
                         Path(smk.output.guess).parent, passages_path=smk.input.passages)
print(f"wrote {guess} and {gold}")
