"""Supervised fine-tuning: token cross-entropy of the target given the source."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repro.batching import IGNORE
from repro.methods.base import Method
from repro.models import ENCODER_DECODER


def target_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, shift: bool) -> torch.Tensor:
    """Mean cross-entropy over label positions that are not IGNORE (shifted for causal LMs)."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                           ignore_index=IGNORE)


class SFT(Method):
    name = "sft"

    def loss(self, model, batch):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    labels=batch["labels"])
        loss = target_cross_entropy(out.logits, batch["labels"],
                                    shift=self.arch != ENCODER_DECODER)
        return loss, {}
