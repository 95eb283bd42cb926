"""Training methods: each is a loss for a batch plus a decoding strategy."""

from __future__ import annotations

from typing import Any

from repro.methods.base import Method
from repro.methods.sft import SFT
from repro.methods.warmup import Warmup

METHODS: dict[str, type[Method]] = {"sft": SFT, "warmup": Warmup}


def get_method(name: str, options: dict[str, Any], tokenizer, arch: str) -> Method:
    if name not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method '{name}' (known: {known})")
    return METHODS[name](options, tokenizer, arch)
