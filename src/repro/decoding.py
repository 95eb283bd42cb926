"""Generation settings from the config's `decoding:` section alone, never from a checkpoint.

A hub checkpoint ships a generation_config.json that `model.generate` applies to every setting
a call leaves unset (Llama-3.2-1B and Llama-2-7B: `do_sample: true, temperature: 0.6,
top_p: 0.9`): a decode that never says `do_sample=False` is silently sampled, unseeded. Here every
setting is spelled out, and `generate` keeps the checkpoint's file out of the call altogether.

    cfg = generation_config(decoding, tokenizer, model.config)
    ids = generate(model, cfg, input_ids=..., attention_mask=...)

`decoding` keys read (all decoding-time): `num_beams`, `max_new_tokens`, `do_sample` (false:
beam search / greedy), and, when sampling, `temperature`, `top_k`, `top_p` (the transformers
defaults 1.0, 50, 1.0 when absent). `seed` (torch's RNG before a decode, `seed_decoding`) makes a
sampled decode repeatable. Keyword overrides (`num_return_sequences`, `bad_words_ids`, ...) take
any GenerationConfig field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import GenerationConfig

# What `model.generate` falls back to when neither the call nor the checkpoint sets a value;
# spelled out so that a checkpoint's value never applies (transformers' own global defaults).
NEUTRAL = {"min_length": 0, "early_stopping": False, "num_return_sequences": 1,
           "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "length_penalty": 1.0,
           "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "typical_p": 1.0,
           "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "use_cache": True,
           "remove_invalid_values": False, "output_scores": False,
           "return_dict_in_generate": False}
SAMPLING_DEFAULTS = {"temperature": 1.0, "top_k": 50, "top_p": 1.0}


def generation_config(decoding: Mapping[str, Any], tokenizer, model_config=None,
                      **overrides: Any) -> GenerationConfig:
    """A GenerationConfig built from scratch from `decoding` (num_beams, max_new_tokens,
    do_sample, temperature, top_k, top_p) and `overrides`; pad and EOS ids from the tokenizer,
    an encoder-decoder's decoder start id from its `model_config` (overridable too)."""
    start = (getattr(model_config, "decoder_start_token_id", None)
             if getattr(model_config, "is_encoder_decoder", False) else None)
    do_sample = bool(overrides.pop("do_sample", decoding.get("do_sample", False)))
    sampling = {k: overrides.pop(k, decoding.get(k, v)) for k, v in SAMPLING_DEFAULTS.items()}
    if not do_sample:  # no sampling warper may run (nor warn about unused settings)
        sampling = dict(SAMPLING_DEFAULTS)
    settings = {**NEUTRAL, **sampling, "do_sample": do_sample,
                "num_beams": decoding["num_beams"], "max_new_tokens": decoding["max_new_tokens"],
                "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
                "decoder_start_token_id": start, **overrides}
    return GenerationConfig(**settings)


def generate(model, config: GenerationConfig, **inputs: Any) -> torch.Tensor:
    """`model.generate(**inputs)` with `config` and nothing of the checkpoint's
    generation_config.json (swapped out for a blank one during the call)."""
    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        return model.generate(**inputs, generation_config=config)
    finally:
        model.generation_config = saved


def seed_decoding(decoding: Mapping[str, Any]) -> None:
    """Seed torch's RNG from `decoding.seed` (default 0) before a decode, so that a decode the
    config asks to sample is repeatable; beam search and greedy decoding draw nothing."""
    torch.manual_seed(int(decoding.get("seed", 0)))
