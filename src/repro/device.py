"""Device and precision choices in one place: CUDA when present, bf16 where the GPU has it,
fp32 on CPU."""

from __future__ import annotations

import torch


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def precision(requested: str = "auto") -> str:
    """Resolve the `training.precision` setting to fp32 | bf16 | fp16 for this machine."""
    if not torch.cuda.is_available():
        return "fp32"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def set_threads(n: int | None) -> None:
    """Use the cores Snakemake gave the job (threads), not every core of the node."""
    if n and n > 0:
        torch.set_num_threads(n)
