"""Training methods: each is a loss for a batch plus a decoding strategy (sft, warmup, cosup).

Light on purpose: the options (repro.methods.options, repro.methods.cosup_options) are checked
and split by stage while Snakemake builds the DAG; a method class (torch, transformers) is
imported on first use (`method_class`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from repro.errors import ConfigError
from repro.methods.cosup_options import CoSupOptions, supervision_of
from repro.methods.options import JOB_STAGES, SFTOptions, WarmupOptions, option_stages

METHOD_CLASSES = {"sft": ("repro.methods.sft", "SFT"),
                  "warmup": ("repro.methods.warmup", "Warmup"),
                  "cosup": ("repro.methods.cosup", "CoSup")}
OPTION_CLASSES: dict[str, type] = {"sft": SFTOptions, "warmup": WarmupOptions,
                                   "cosup": CoSupOptions}


def _known(name: str) -> None:
    if name not in METHOD_CLASSES:
        raise ConfigError(f"unknown method '{name}' (known: {', '.join(sorted(METHOD_CLASSES))})")


def method_class(name: str):
    """The class of method `name` (imported on first use)."""
    _known(name)
    module, cls = METHOD_CLASSES[name]
    return getattr(import_module(module), cls)


def get_method(name: str, options: dict[str, Any], tokenizer, arch: str,
               variant: str | None = None):
    """The method `name` with its options; `variant` is the run's variant name (a method may
    read defaults from it, see Method.options_for_variant)."""
    cls = method_class(name)
    return cls(cls.options_for_variant(options, variant), tokenizer, arch)


def check_options(method: str, options: dict[str, Any], variant: str | None = None) -> Any:
    """The validated options of a run; ConfigError naming the method and the fault."""
    _known(method)
    if method == "cosup":
        return CoSupOptions.from_dict({**options,
                                       "supervision": supervision_of(options, variant)})
    return OPTION_CLASSES[method].from_dict(options)


def options_read_by(method: str, options: dict[str, Any], job: str) -> dict[str, Any]:
    """The options that a `job` ("train" or "decode") of the method reads: its job params."""
    _known(method)
    stages = option_stages(OPTION_CLASSES[method])
    wanted = JOB_STAGES[job]
    return {k: v for k, v in options.items() if k not in stages or stages[k] & wanted}
