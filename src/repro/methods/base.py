"""The method interface: `loss(model, batch)` for training and `decode(model, batch, ...)`.

Hooks with defaults that fit single-model methods (SFT, warmup); a method that trains more
than one network, reads more than the split, or decodes with extra inputs (co-supervision)
overrides them: `options_for_variant`, `prepare_model`, `encode_split`, `collator`, `save`,
`load_for_decoding`, `prepare_decoding`, `decode_records`, `generator_parameters`, and
`log_keys` (loss-dict entries logged while training).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from repro.batching import Collator, encode_record, prompt_options
from repro.decoding import generate as generate_with
from repro.decoding import generation_config
from repro.errors import ConfigError
from repro.io import DataError, read_jsonl
from repro.methods.options import NORMALIZATIONS
from repro.models import ENCODER_DECODER

# How a batch's cross-entropy is averaged (training time; the `loss_normalization` option of
# sft and warmup): `token` = over all counted tokens of the batch (the Hugging Face loss), the
# default of both methods; `sequence` = each sequence's mean, then the mean over sequences.


def row_losses(sums: torch.Tensor, counts: torch.Tensor, normalization: str) -> torch.Tensor:
    """Per-row losses whose mean over the rows is the batch loss: each row's summed NLL over its
    own token count (`sequence`) or over the batch's mean count per row (`token`, so that the
    mean is the sum over all tokens over their number)."""
    if normalization == "sequence":
        return sums / counts.clamp_min(1)
    if normalization == "token":
        return sums / counts.float().mean().clamp_min(1)
    raise ConfigError(f"loss_normalization must be one of {NORMALIZATIONS}, "
                      f"got {normalization!r}")


class Method:
    """Base class; subclasses override `loss` and, where decoding differs, `decode`."""

    name = "base"
    log_keys: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any], tokenizer, arch: str) -> None:
        self.options = options
        self.tokenizer = tokenizer
        self.arch = arch

    @classmethod
    def options_for_variant(cls, options: dict[str, Any], variant: str | None) -> dict[str, Any]:
        """The options given the run's variant name (by default the variant adds nothing)."""
        return options

    # --- training -----------------------------------------------------------------------

    def prepare_model(self, model, base_path: str):
        """The module the trainer optimises, built from the loaded base model."""
        return model

    def encode_split(self, path: Path, training: dict[str, Any]) -> list[dict]:
        """Features of one split file (data_dir/{split}.jsonl) for `collator`."""
        records = read_jsonl(path)
        if not records:
            raise DataError(f"{path}: no records to train on")
        return [encode_record(r, self.tokenizer, self.arch, training["max_source_len"],
                              training["max_target_len"], training["prompt_suffix"],
                              **prompt_options(training))
                for r in records]

    def collator(self):
        return Collator(self.tokenizer.pad_token_id, self.arch)

    def loss(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def save(self, trainer, out: Path) -> None:
        """Write the trained model (and tokenizer) into the directory `out`."""
        trainer.save_model(str(out))
        self.tokenizer.save_pretrained(str(out))

    def generator_parameters(self, model):
        """The parameters `training.clip_grad_scope: generator` clips (all by default)."""
        return model.parameters()

    # --- decoding -----------------------------------------------------------------------

    @classmethod
    def load_for_decoding(cls, model_ref: str | None, arch: str, options: dict[str, Any],
                          inputs: dict[str, Any]):
        """(model, tokenizer) that decode: the run's trained model directory."""
        from repro.models import load_model, load_tokenizer

        if not model_ref:
            raise DataError(f"{cls.name}: decoding needs the run's trained model")
        return load_model(str(model_ref), arch), load_tokenizer(str(model_ref), arch)

    def prepare_decoding(self, model_dir: Path | None, inputs: dict[str, Any]) -> None:
        """Load what decoding needs besides the model (e.g. a retrieval index)."""

    def decode_records(self, model, records: list[dict], batch: dict[str, torch.Tensor],
                       decoding: dict[str, Any]) -> list[dict]:
        """Decode one batch of records; the default reads only the prompt batch."""
        return self.decode(model, batch, decoding)

    @torch.no_grad()
    def decode(self, model, batch: dict[str, torch.Tensor], decoding: dict[str, Any]) -> list[dict]:
        """Beam search on the batch; one dict a row with the hypothesis and the decoding time."""
        start = time.perf_counter()
        out = generate(model, self.arch, batch,
                       generation_config(decoding, self.tokenizer, model.config))
        secs = (time.perf_counter() - start) / len(out)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [{"hypothesis": t.strip(), "decode_seconds": secs} for t in texts]


def generate(model, arch: str, batch: dict[str, torch.Tensor], config, **inputs) -> torch.Tensor:
    """model.generate on prompts with exactly the GenerationConfig `config` (repro.decoding);
    returns only the newly generated ids for decoder-only models."""
    out = generate_with(model, config, input_ids=batch["input_ids"],
                        attention_mask=batch["attention_mask"], **inputs)
    if arch == ENCODER_DECODER:
        return out
    return out[:, batch["input_ids"].shape[1]:]
