"""Pretraining of a tiny model (`models.<m>.pretrain`): the embedded default's stand-in for the
papers' pretrained checkpoints (mT5/T5 and Llama are fine-tuned, never trained from scratch).

Corpus: the unlabelled text of the datasets the section names, i.e. each training record's
source and target as two separate documents (no pair is seen aligned: no translation is
learnt before fine-tuning) and each passage of a knowledge dataset (the "Wikipedia" of the
synthetic world). Validation and test splits are never read. This is task-adaptive
pretraining (Gururangan et al., 2020) on the union of the tasks' texts: one checkpoint serves
every task of the model. The model's tokenizer is trained on the same corpus.

Rows: the documents, each tokenized with its special tokens (T5: `text </s>`; Llama:
`<s> text </s>`), concatenated in corpus order and cut into rows of `max_len` tokens, as T5
and GPT-style models are pretrained (the last row may be shorter, not of one token). Objectives:

- `span_corruption` (encoder-decoder; T5 and mT5's objective, Raffel et al. 2020, sec. 3.1.4):
  `noise_density` of a row's tokens, in spans of mean length `mean_span_length`, are replaced
  in the encoder input by one sentinel each (`<extra_id_0>`, `<extra_id_1>`, ...); the target
  is each sentinel followed by the tokens it replaced, then `</s>`. The spans are drawn as in
  T5's `random_spans_noise_mask` (the row starts with kept tokens and alternates), anew for
  every batch from torch's generator (seeded by `seed`, restored on resume).
- `causal_lm` (decoder-only; Llama's objective): next-token cross-entropy on every token of
  the row.

Both average the cross-entropy over the batch's target tokens. Training runs on the HF Trainer
as the methods do (repro.train.fit): checkpoints outside the outputs, resumed after a kill.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed

from repro.batching import IGNORE, pad
from repro.io import DataError, iter_jsonl, write_json
from repro.methods.sft import target_cross_entropy
from repro.models import ENCODER_DECODER, arch_of, build_tiny, load_model, load_tokenizer
from repro.pretrain_jobs import SUMMARY, objective_of
from repro.train import FiniteLogCheck, MethodTrainer, fit, training_arguments
from repro.train_logging import LogPoints

log = logging.getLogger(__name__)

SENTINEL = "<extra_id_{}>"  # T5's sentinel tokens


# --- corpus ------------------------------------------------------------------------------------


def corpus_texts(paths: Iterable[Path]) -> list[str]:
    """The documents of the corpus files, in file order, each text once: a training split's
    sources and targets (separately), a passages file's texts."""
    texts: dict[str, None] = {}
    for path in paths:
        fields = ("text",) if path.name == "passages.jsonl" else ("source", "target")
        for rec in iter_jsonl(path):
            for f in fields:
                if isinstance(rec.get(f), str) and rec[f].strip():
                    texts[rec[f]] = None
    if not texts:
        raise DataError(f"pretraining corpus: no text in {', '.join(map(str, paths))}")
    return list(texts)


def corpus_digest(texts: Sequence[str]) -> str:
    """A hash of the corpus: checkpoints made on another corpus are never resumed from."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def pack(texts: Sequence[str], tokenizer, arch: str, max_len: int) -> list[list[int]]:
    """Token rows of at most max_len: every document with its special tokens (T5: `</s>` at
    its end; Llama: `<s>` before and `</s>` after), concatenated and cut (a last row of one
    token is dropped: nothing to corrupt or predict)."""
    eos = [] if arch == ENCODER_DECODER else [tokenizer.eos_token_id]
    stream: list[int] = []
    for ids in tokenizer(list(texts))["input_ids"]:
        stream += ids + eos
    rows = [stream[i:i + max_len] for i in range(0, len(stream), max_len)]
    return [r for r in rows if len(r) > 1]


# --- span corruption (T5) ----------------------------------------------------------------------


def span_counts(length: int, density: float, mean_span: float) -> tuple[int, int]:
    """(noise tokens, noise spans) of a row of `length` tokens, as T5 counts them."""
    noise = min(max(round(length * density), 1), length - 1)
    return noise, max(round(noise / mean_span), 1)


def sentinel_count(max_len: int, density: float, mean_span: float) -> int:
    """Sentinels a tokenizer needs for rows of up to max_len tokens."""
    return max(span_counts(n, density, mean_span)[1] for n in range(2, max(max_len, 2) + 1))


def _segments(n_items: int, n_segments: int, gen: torch.Generator | None) -> list[int]:
    """A uniformly random split of n_items into n_segments non-empty lengths."""
    cuts = sorted((torch.randperm(n_items - 1, generator=gen)[: n_segments - 1] + 1).tolist())
    bounds = [0, *cuts, n_items]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


def noise_mask(length: int, density: float, mean_span: float,
               gen: torch.Generator | None = None) -> list[bool]:
    """T5's random_spans_noise_mask: spans of kept and noise tokens alternate, kept first."""
    noise, spans = span_counts(length, density, mean_span)
    kept = _segments(length - noise, spans, gen)
    noisy = _segments(noise, spans, gen)
    mask: list[bool] = []
    for k, n in zip(kept, noisy, strict=True):
        mask += [False] * k + [True] * n
    return mask


def corrupt(ids: Sequence[int], mask: Sequence[bool], sentinels: Sequence[int],
            eos: int) -> tuple[list[int], list[int]]:
    """(encoder input, target) of one row: each noise span becomes a sentinel in the input,
    and the target lists each sentinel with the tokens it replaced; both end with eos."""
    inputs: list[int] = []
    target: list[int] = []
    span = -1
    for i, (tok, noisy) in enumerate(zip(ids, mask, strict=True)):
        if noisy:
            if i == 0 or not mask[i - 1]:
                span += 1
                inputs.append(sentinels[span])
                target.append(sentinels[span])
            target.append(tok)
        else:
            inputs.append(tok)
    return inputs + [eos], target + [eos]


# --- the objective as a method of the Trainer ----------------------------------------------------


class Pretraining:
    """The loss, collator and save hook MethodTrainer calls (see repro.methods.base.Method)."""

    log_keys: tuple[str, ...] = ()

    def __init__(self, objective: str, tokenizer, arch: str, cfg: dict[str, Any]) -> None:
        self.objective = objective
        self.tokenizer = tokenizer
        self.arch = arch
        self.density = cfg["noise_density"]
        self.mean_span = cfg["mean_span_length"]
        self.summary: dict[str, Any] = {}
        self.sentinels = (
            tokenizer.convert_tokens_to_ids(
                [SENTINEL.format(i) for i in range(sentinel_count(cfg["max_len"], self.density,
                                                                  self.mean_span))])
            if objective == "span_corruption" else [])

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [r["input_ids"] for r in rows]
        pad_id = self.tokenizer.pad_token_id
        if self.objective == "causal_lm":
            input_ids = pad(ids, pad_id)
            mask = torch.zeros_like(input_ids)
            for i, row in enumerate(ids):
                mask[i, : len(row)] = 1
            return {"input_ids": input_ids, "attention_mask": mask,
                    "labels": input_ids.masked_fill(mask == 0, IGNORE)}
        pairs = [corrupt(row, noise_mask(len(row), self.density, self.mean_span),
                         self.sentinels, self.tokenizer.eos_token_id) for row in ids]
        input_ids = pad([p[0] for p in pairs], pad_id)
        mask = torch.zeros_like(input_ids)
        for i, (inp, _) in enumerate(pairs):
            mask[i, : len(inp)] = 1
        return {"input_ids": input_ids, "attention_mask": mask,
                "labels": pad([p[1] for p in pairs], IGNORE)}

    def loss(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    labels=batch["labels"])
        return target_cross_entropy(out.logits, batch["labels"],
                                    shift=self.arch != ENCODER_DECODER), {}

    def generator_parameters(self, model):
        return model.parameters()

    def save(self, trainer, out: Path) -> None:
        trainer.save_model(str(out))
        self.tokenizer.save_pretrained(str(out))
        write_json(out / SUMMARY, self.summary)


def pretrain_training(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `pretrain` section as the training settings repro.train.training_arguments reads
    (AdamW, linear decay after `warmup_ratio` of the steps, no weight decay, clipping at 1)."""
    return {"batch_size": cfg["batch_size"], "grad_accum": 1, "epochs": 1,
            "learning_rate": cfg["learning_rate"], "weight_decay": 0.0,
            "warmup_ratio": cfg["warmup_ratio"], "lr_scheduler": "linear",
            "max_grad_norm": 1.0, "save_steps": cfg["save_steps"], "precision": "auto"}


def pretrain_run(name: str, model_cfg: dict[str, Any], corpus: Sequence[Path], model_out: Path,
                 log_out: Path, ckpt_dir: Path, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Build the tiny model and its tokenizer on the corpus, pretrain it for `steps` steps,
    save it (with pretrain.json) to model_out and the log rows to log_out; return the summary.
    A killed job resumes from its last checkpoint in ckpt_dir (one of this config and corpus).
    `callbacks`: extra Trainer callbacks."""
    cfg = model_cfg["pretrain"]
    arch = arch_of(model_cfg["family"])
    objective = objective_of(model_cfg)
    texts = corpus_texts(corpus)
    sentinels = ([SENTINEL.format(i) for i in range(
        sentinel_count(cfg["max_len"], cfg["noise_density"], cfg["mean_span_length"]))]
        if objective == "span_corruption" else [])
    init = ckpt_dir / "init"  # the same config and corpus build the same initial model
    built = build_tiny(name, model_cfg, texts, init, seed=cfg["seed"], extra_special=sentinels)
    set_seed(cfg["seed"])
    tokenizer = load_tokenizer(str(init), arch)
    model = load_model(str(init), arch)
    rows = pack(texts, tokenizer, arch, cfg["max_len"])
    method = Pretraining(objective, tokenizer, arch, cfg)
    identity = {"model": {k: v for k, v in model_cfg.items() if k not in ("resources", "training")},
                "corpus": corpus_digest(texts)}
    training = pretrain_training(cfg)
    args = training_arguments(training, ckpt_dir, cfg["seed"], False, max_steps=cfg["steps"])
    trainer = MethodTrainer(
        model=model, args=args, train_dataset=[{"input_ids": r} for r in rows],
        data_collator=method.collate, processing_class=tokenizer,
        callbacks=[FiniteLogCheck(), LogPoints(), *callbacks], method=method,
        training=training)
    method.summary = {"objective": objective, "steps": cfg["steps"], "documents": len(texts),
                      "rows": len(rows), "tokens": sum(map(len, rows)),
                      "n_params": built["n_params"], "vocab_size": built["vocab_size"],
                      "corpus": identity["corpus"]}
    result, last = fit(trainer, method, identity, ckpt_dir, model_out, log_out)
    log.info("pretrained %s: %s", name, method.summary)
    return {**method.summary, "resumed_from": last, "train_loss": result.training_loss}

