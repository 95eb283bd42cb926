"""Snakemake adapter: point to the model's pretrained checkpoint, build a tiny base model
(tokenizer trained on the train split) or check an hf model resolves; writes base.json in the
output directory."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.base_model import prepare_base_model
from repro.workflow import start

params = start(snakemake)  # noqa: F821
inputs = {k: Path(v) for k, v in snakemake.input.items()  # noqa: F821
          if k in ("train", "pretrained")}  # not the config's local files (config_files)
prepare_base_model(
    snakemake.wildcards.model,  # noqa: F821
    params["model"],
    inputs.get("train"),
    Path(snakemake.output[0]),  # noqa: F821
    pretrained=inputs.get("pretrained"),
)
