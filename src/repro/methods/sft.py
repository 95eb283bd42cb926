"""Supervised fine-tuning: token cross-entropy of the target given the source."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from repro.batching import IGNORE
from repro.methods.base import Method, row_losses
from repro.methods.options import SFTOptions
from repro.models import ENCODER_DECODER


def target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, shift: bool,
                         normalization: str = "token") -> torch.Tensor:
    """Cross-entropy over label positions that are not IGNORE (shifted for causal LMs),
    averaged as `normalization` says (repro.methods.base.row_losses)."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    flat = logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1)
    if normalization == "token":  # the same number as the row form, in one call
        return F.cross_entropy(*flat, ignore_index=IGNORE)
    nll = F.cross_entropy(*flat, ignore_index=IGNORE, reduction="none").view(labels.shape)
    return row_losses(nll.sum(-1), (labels != IGNORE).sum(-1), normalization).mean()


class SFT(Method):
    name = "sft"

    def __init__(self, options: dict[str, Any], tokenizer, arch: str) -> None:
        super().__init__(options, tokenizer, arch)
        self.opts = SFTOptions.from_dict(options)

    def loss(self, model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    labels=batch["labels"])
        loss = target_cross_entropy(out.logits, batch["labels"],
                                    shift=self.arch != ENCODER_DECODER,
                                    normalization=self.opts.loss_normalization)
        return loss, {}
