"""Base models: a hub id or local checkpoint (`hf`), or a tiny model built from a config (`tiny`).

Every base model is described by a manifest (base.json) holding what later stages load with
from_pretrained: {"kind", "family", "arch", "path"}. Tiny models get a BPE tokenizer trained
on the task's training texts, saved with save_pretrained, so both kinds load the same way.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from repro.errors import ConfigError

ENCODER_DECODER = "encoder-decoder"
DECODER_ONLY = "decoder-only"
FAMILY_ARCH = {"t5": ENCODER_DECODER, "mt5": ENCODER_DECODER, "llama": DECODER_ONLY,
               "gpt2": DECODER_ONLY}
SPECIAL = {"pad": "<pad>", "eos": "</s>", "unk": "<unk>", "bos": "<s>"}

TINY_DEFAULTS = {
    "t5": {"d_model": 128, "d_kv": 32, "d_ff": 256, "num_layers": 2, "num_decoder_layers": 2,
           "num_heads": 4, "dropout_rate": 0.0},
    "llama": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512},
    "gpt2": {"n_embd": 128, "n_layer": 2, "n_head": 4, "n_positions": 512},
}


def arch_of(family: str) -> str:
    return FAMILY_ARCH[family]


def train_tokenizer(texts: Iterable[str], vocab_size: int, arch: str,
                    extra_special: Sequence[str] = ()):
    """A BPE tokenizer on `texts`: T5-style (`text </s>`) or Llama-style (`<s> text`), with
    the tokens `extra_special` (e.g. T5's sentinels) added after its vocabulary as special
    tokens (decoding with skip_special_tokens drops them).

    BPE, not Unigram: the tokenizers library's BPE training is deterministic (ties broken by
    the pair itself), while its Unigram trainer orders equal scores by hash-map order, which
    changes from process to process; the same config must build the same tiny model anywhere.
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk"]))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = [SPECIAL["pad"], SPECIAL["eos"], SPECIAL["unk"], SPECIAL["bos"]]
    trainer = trainers.BpeTrainer(  # ASCII punctuation always encodes (e.g. " || ")
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=list(string.punctuation),
    )
    tok.train_from_iterator(texts, trainer)
    if arch == ENCODER_DECODER:
        eos = SPECIAL["eos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
            special_tokens=[(eos, tok.token_to_id(eos))],
        )
    else:
        bos = SPECIAL["bos"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=SPECIAL["pad"], eos_token=SPECIAL["eos"], unk_token=SPECIAL["unk"],
        bos_token=SPECIAL["bos"], model_input_names=["input_ids", "attention_mask"],
        padding_side="right", additional_special_tokens=list(extra_special),
    )


def tiny_model(family: str, overrides: dict[str, Any], tokenizer):
    """A randomly initialised model of `family` sized by TINY_DEFAULTS updated with overrides."""
    import transformers as tf

    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
           "bos_token_id": tokenizer.bos_token_id}
    vocab = len(tokenizer)
    if family in ("t5", "mt5"):
        cfg_cls = tf.T5Config if family == "t5" else tf.MT5Config
        cfg = cfg_cls(vocab_size=vocab, decoder_start_token_id=tokenizer.pad_token_id,
                      tie_word_embeddings=family == "t5",
                      **{**TINY_DEFAULTS["t5"], **overrides}, **ids)
        model_cls = (tf.T5ForConditionalGeneration if family == "t5"
                     else tf.MT5ForConditionalGeneration)
    elif family == "llama":
        cfg = tf.LlamaConfig(vocab_size=vocab, tie_word_embeddings=True,
                             **{**TINY_DEFAULTS["llama"], **overrides}, **ids)
        model_cls = tf.LlamaForCausalLM
    elif family == "gpt2":
        cfg = tf.GPT2Config(vocab_size=vocab, **{**TINY_DEFAULTS["gpt2"], **overrides}, **ids)
        model_cls = tf.GPT2LMHeadModel
    else:
        raise ConfigError(f"unknown model family '{family}'")
    return model_cls(cfg)


def build_tiny(name: str, model_cfg: dict[str, Any], texts: list[str], out_dir: Path,
               seed: int = 0, extra_special: Sequence[str] = ()) -> dict[str, Any]:
    """Train the tokenizer (with `extra_special` tokens), build the tiny model, save both to
    out_dir; return the manifest."""
    import torch

    family = model_cfg["family"]
    arch = arch_of(family)
    vocab_size = model_cfg.get("tokenizer", {}).get("vocab_size", 1000)
    tokenizer = train_tokenizer(texts, vocab_size, arch, extra_special)
    torch.manual_seed(seed)
    model = tiny_model(family, model_cfg.get("config", {}), tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    return {"name": name, "kind": "tiny", "family": family, "arch": arch, "path": str(out_dir),
            "n_params": n_params, "vocab_size": len(tokenizer)}


def resolve_hf(name: str, model_cfg: dict[str, Any]) -> dict[str, Any]:
    """Check a hub id or local path resolves (offline: from the local cache) and describe it."""
    from repro.config_checks import looks_local as _looks_local
    from repro.config_checks import model_path_problem

    path = model_cfg["path"]
    looks_local = _looks_local(path)
    problem = model_path_problem(name, path)  # also checked when the DAG is built
    if problem:
        raise ConfigError(problem)
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(path, revision=model_cfg.get("revision"))
    except OSError as e:
        raise ConfigError(
            f"models.{name}.path: cannot load '{path}' ({str(e).splitlines()[0]}). Download it "
            f"on a machine with hub access (see README) and set models.{name}.path to the copy"
        ) from e
    family = model_cfg["family"]
    return {"name": name, "kind": "hf", "family": family, "arch": arch_of(family),
            "path": str(Path(path).expanduser()) if looks_local else path,
            "revision": model_cfg.get("revision")}


def load_tokenizer(path: str, arch: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def load_model(path: str, arch: str, dtype=None):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if arch == ENCODER_DECODER else AutoModelForCausalLM
    return _from_pretrained(cls, path, dtype)


def initial_model(manifest: dict[str, Any], seed: int):
    """The model a run's training starts from: an hf checkpoint or a pretrained tiny model as
    saved; else a tiny model newly initialised from the run's seed (its base model directory
    holds seed 0's weights, so seed 0 starts from exactly those), so that the seeds of a tiny
    run differ in their initialisation too, not only in data order and sampling."""
    if manifest.get("kind") != "tiny" or manifest.get("pretrained"):
        # a hub checkpoint, or a tiny model pretrained once (repro.pretrain): every seed starts
        # from those weights, as every seed of a hub model does
        return load_model(manifest["path"], manifest["arch"])
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if manifest["arch"] == ENCODER_DECODER else AutoModelForCausalLM
    config = AutoConfig.from_pretrained(manifest["path"])
    with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
        torch.manual_seed(seed)
        return cls.from_config(config)


def load_base_model(path: str, dtype=None):
    """The transformer body of a decoder-only checkpoint, without its LM head (AutoModel)."""
    from transformers import AutoModel

    return _from_pretrained(AutoModel, path, dtype)


def _from_pretrained(cls, path: str, dtype=None):
    kwargs = {"dtype": dtype} if dtype is not None else {}
    try:
        return cls.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load model checkpoint '{path}': {str(e).splitlines()[0]}") from e
