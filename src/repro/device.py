"""Device, precision and parallelism choices in one place: CUDA when present, bf16 where the GPU
has it, fp32 on CPU; the training forward's autocast; data-parallel (DDP) or fully sharded
(FSDP) training across processes, and the plain model inside their wrappers."""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "ddp", "fsdp")
# `auto` shards models from this many parameters on (a 7B model and its optimizer state do
# not fit one 80 GB GPU; a 1B one does).
FSDP_MIN_PARAMS = 3_000_000_000


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# Test-only switch: with it set to 1, an explicit `training.precision: bf16` is honoured on CPU
# too (CPU autocast), so that tests run the GPU's mixed-precision code path.
CPU_BF16_ENV = "REPRO_TEST_CPU_BF16"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def precision(requested: str = "auto") -> str:
    """Resolve the `training.precision` setting to fp32 | bf16 | fp16 for this machine."""
    if not torch.cuda.is_available():
        if requested == "bf16" and os.environ.get(CPU_BF16_ENV) == "1":
            return "bf16"
        return "fp32"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def autocast(prec: str, dev: torch.device | str) -> AbstractContextManager:
    """The autocast every method's training forward runs under, for a precision resolved by
    `precision` (fp32: none). One context around the whole loss, so that methods calling the
    encoder, decoder or LM head directly (warmup) run in the same dtype as SFT's forward."""
    if prec == "fp32":
        return nullcontext()
    return torch.autocast(device_type=torch.device(dev).type, dtype=DTYPES[prec])


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or FSDP1) wrapper; the model itself otherwise. For what must not
    go through the wrapper's forward (e.g. sampling without gradient); a training forward must."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while isinstance(model, (DistributedDataParallel, DataParallel, FullyShardedDataParallel)):
        model = model.module
    return model


def strategy(requested: str, world_size: int, n_params: int, cuda: bool | None = None) -> str:
    """`training.distributed.strategy` resolved for this job: ddp | fsdp.

    `auto` is fsdp for a model of FSDP_MIN_PARAMS or more on several GPUs, else ddp. FSDP
    needs CUDA (the HF Trainer drops it on CPU): there it falls back to ddp. With one process
    ddp is plain single-device training.
    """
    if requested not in STRATEGIES:
        raise ValueError(f"training.distributed.strategy: {requested!r} is not one of "
                         f"{STRATEGIES}")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if requested == "auto":
        requested = "fsdp" if world_size > 1 and n_params >= FSDP_MIN_PARAMS else "ddp"
    if requested == "fsdp" and not cuda:
        log.warning("training.distributed.strategy fsdp needs CUDA; training with ddp on CPU")
        return "ddp"
    return requested


def decoder_layer_classes(model: nn.Module) -> list[str]:
    """Class names of the repeated blocks of every HF model inside `model` (each one's
    `_no_split_modules` that occur in it): the FSDP auto-wrap units. For co-supervision both
    Gen's and Embseq's layers (e.g. LlamaDecoderLayer and GPT2Block)."""
    declared = {name for m in model.modules()
                for name in (getattr(m, "_no_split_modules", None) or [])}
    present = {type(m).__name__ for m in model.modules()}
    found = sorted(declared & present)
    if not found:
        raise ValueError(f"{type(model).__name__}: no decoder layer class to shard (no "
                         "_no_split_modules of its HF models occurs in it)")
    return found


def fsdp_arguments(model: nn.Module, activation_checkpointing: bool) -> dict[str, Any]:
    """TrainingArguments for FSDP: full sharding of each decoder layer, checkpoints as full
    (world-size independent) state dicts, FSDP's own activation checkpointing."""
    return {"fsdp": True,
            "fsdp_config": {"transformer_layer_cls_to_wrap": decoder_layer_classes(model),
                            "state_dict_type": "FULL_STATE_DICT",
                            "activation_checkpointing": activation_checkpointing}}


def enable_activation_checkpointing(model: nn.Module) -> int:
    """Gradient (activation) checkpointing of every outermost HF model inside `model`, for
    DDP or single-device training (FSDP does its own); returns how many were switched on."""
    covered: set[int] = set()
    n = 0
    for m in model.modules():
        if (id(m) not in covered and getattr(m, "supports_gradient_checkpointing", False)
                and hasattr(m, "activation_checkpointing_enable")):
            m.activation_checkpointing_enable({"use_reentrant": False})
            covered |= {id(s) for s in m.modules()}
            n += 1
    return n
