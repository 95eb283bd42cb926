"""Snakemake adapter: pretrain one tiny model on its corpus (models.<m>.pretrain)."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.pretrain import pretrain_run
from repro.workflow import start

params = start(snakemake)  # noqa: F821
print(
    pretrain_run(
        snakemake.wildcards.model,  # noqa: F821
        params["model"],
        [Path(p) for p in snakemake.input.corpus],  # noqa: F821
        Path(snakemake.output.model),  # noqa: F821
        Path(snakemake.output.log),  # noqa: F821
        Path(params["checkpoints"]),
    )
)
