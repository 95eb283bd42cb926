"""The method interface: `loss(model, batch)` for training and `decode(model, batch, ...)`."""

from __future__ import annotations

import time
from typing import Any

import torch

from repro.models import ENCODER_DECODER


class Method:
    """Base class; subclasses override `loss` and, where decoding differs, `decode`."""

    name = "base"

    def __init__(self, options: dict[str, Any], tokenizer, arch: str) -> None:
        self.options = options
        self.tokenizer = tokenizer
        self.arch = arch

    def loss(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    @torch.no_grad()
    def decode(self, model, batch: dict[str, torch.Tensor], decoding: dict[str, Any]) -> list[dict]:
        """Beam search on the batch; one dict a row with the hypothesis and the decoding time."""
        start = time.perf_counter()
        out = generate(model, self.tokenizer, self.arch, batch, num_beams=decoding["num_beams"],
                       max_new_tokens=decoding["max_new_tokens"])
        secs = (time.perf_counter() - start) / len(out)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [{"hypothesis": t.strip(), "decode_seconds": secs} for t in texts]


def generate(model, tokenizer, arch: str, batch: dict[str, torch.Tensor], **kwargs) -> torch.Tensor:
    """model.generate on prompts; returns only the newly generated ids for decoder-only models."""
    kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
    kwargs.setdefault("eos_token_id", tokenizer.eos_token_id)
    out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         **kwargs)
    if arch == ENCODER_DECODER:
        return out
    return out[:, batch["input_ids"].shape[1]:]
