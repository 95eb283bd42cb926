"""Snakemake adapter: train one run with its method, in one process per GPU of the job."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.config import Run, training_settings
from repro.io import read_json
from repro.launch import requested_gpus, train
from repro.workflow import start

params = start(snakemake)  # noqa: F821
run = Run.from_wildcards(snakemake.wildcards)  # noqa: F821
job = {
    "resolved": params["run"],
    # settings that change no model (save_steps): from the config, not a rerun trigger
    "settings": training_settings(snakemake.config, run),  # noqa: F821
    "manifest": read_json(Path(snakemake.input.base) / "base.json"),  # noqa: F821
    "data_dir": str(Path(snakemake.input.data[0]).parent),  # noqa: F821
    "model_out": snakemake.output.model,  # noqa: F821
    "log_out": snakemake.output.log,  # noqa: F821
    "ckpt_dir": params["checkpoints"],
}
print(train(job, requested_gpus(snakemake.resources)))  # noqa: F821
