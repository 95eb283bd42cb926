"""Snakemake adapter: tables per task and plots over every run."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.report import write_report
from repro.workflow import start

params = start(snakemake)  # noqa: F821
write_report(
    snakemake.input.metrics,  # noqa: F821
    snakemake.input.train_logs,  # noqa: F821
    Path(snakemake.output.tables[0]).parent,  # noqa: F821
    Path(snakemake.output.main_plot),  # noqa: F821
    Path(snakemake.output.curves_plot),  # noqa: F821
    params["baseline"],
)
