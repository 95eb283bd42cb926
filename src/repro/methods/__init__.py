"""Training methods: each is a loss for a batch plus a decoding strategy."""

from __future__ import annotations

from typing import Any

from repro.methods.base import Method
from repro.methods.cosup import CoSup
from repro.methods.sft import SFT
from repro.methods.warmup import Warmup

METHODS: dict[str, type[Method]] = {"sft": SFT, "warmup": Warmup, "cosup": CoSup}


def get_method(name: str, options: dict[str, Any], tokenizer, arch: str,
               variant: str | None = None) -> Method:
    """The method `name` with its options; `variant` is the run's variant name (a method may
    read defaults from it, see Method.options_for_variant)."""
    if name not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method '{name}' (known: {known})")
    cls = METHODS[name]
    return cls(cls.options_for_variant(options, variant), tokenizer, arch)
