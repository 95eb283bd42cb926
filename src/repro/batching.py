"""Records -> token ids -> padded batches, for encoder-decoder and decoder-only models.

Encoder-decoder: encoder input = source, labels = target (+ </s>).
Decoder-only: input = prompt(source) + target + eos, labels masked (-100) on the prompt.
Each feature keeps `prompt_ids` and `target_ids` separately, so a method can rebuild sequences
(e.g. insert a warmup between prompt and target) without decoding and re-encoding text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from repro.models import ENCODER_DECODER

IGNORE = -100


DEFAULT_TEMPLATE = "{instruction}{source}"  # training.prompt_template's default


def prompt_text(source: str, prompt_suffix: str, template: str = DEFAULT_TEMPLATE,
                instruction: str = "") -> str:
    """The prompt of a record: `template` on the dataset's instruction and the record's source,
    then `prompt_suffix` (decoder-only models)."""
    return template.format(instruction=instruction, source=source) + prompt_suffix


def prompt_options(training: dict[str, Any]) -> dict[str, str]:
    """`template` and `instruction` of the resolved training config, for encode_record."""
    return {"template": training.get("prompt_template", DEFAULT_TEMPLATE),
            "instruction": training.get("instruction", "")}


def encode_record(rec: dict[str, Any], tokenizer, arch: str, max_source_len: int,
                  max_target_len: int, prompt_suffix: str = "\n=>", *,
                  template: str = DEFAULT_TEMPLATE, instruction: str = "") -> dict[str, Any]:
    """Token ids of one record: `prompt_ids` (encoder input or decoder prompt) and `target_ids`."""
    if arch == ENCODER_DECODER:
        source = prompt_text(rec["source"], "", template, instruction)
        prompt = tokenizer(source, truncation=True, max_length=max_source_len)["input_ids"]
        target = tokenizer(rec["target"], truncation=True, max_length=max_target_len)["input_ids"]
    else:
        prompt = tokenizer(prompt_text(rec["source"], prompt_suffix, template, instruction),
                           truncation=True, max_length=max_source_len)["input_ids"]
        target = tokenizer(rec["target"], add_special_tokens=False, truncation=True,
                           max_length=max_target_len - 1)["input_ids"] + [tokenizer.eos_token_id]
    return {"id": rec["id"], "prompt_ids": prompt, "target_ids": target}


def pad(seqs: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    rows = [([value] * (width - len(s)) + s) if left else (s + [value] * (width - len(s)))
            for s in seqs]
    return torch.tensor(rows, dtype=torch.long)


@dataclass
class Collator:
    """Pads features into model inputs; keeps the padded prompts and targets for methods."""

    pad_id: int
    arch: str

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [f["prompt_ids"] for f in features]
        targets = [f["target_ids"] for f in features]
        if self.arch == ENCODER_DECODER:
            input_ids = pad(prompts, self.pad_id)
            return {"input_ids": input_ids, "attention_mask": (input_ids != self.pad_id).long()
                    if self.pad_id is not None else torch.ones_like(input_ids),
                    "labels": pad(targets, IGNORE)}
        seqs = [p + t for p, t in zip(prompts, targets, strict=True)]
        labels = [[IGNORE] * len(p) + t for p, t in zip(prompts, targets, strict=True)]
        lengths = [len(s) for s in seqs]
        input_ids = pad(seqs, self.pad_id)
        mask = torch.zeros_like(input_ids)
        for i, n in enumerate(lengths):
            mask[i, :n] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "labels": pad(labels, IGNORE)}


def prompt_batch(features: list[dict[str, Any]], pad_id: int, arch: str) -> dict[str, torch.Tensor]:
    """Generation inputs: right-padded encoder inputs, or left-padded decoder prompts."""
    prompts = [f["prompt_ids"] for f in features]
    left = arch != ENCODER_DECODER
    input_ids = pad(prompts, pad_id, left=left)
    mask = torch.zeros_like(input_ids)
    for i, p in enumerate(prompts):
        if left:
            mask[i, input_ids.shape[1] - len(p):] = 1
        else:
            mask[i, : len(p)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
