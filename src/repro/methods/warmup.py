"""Warmup Generations (arXiv 2502.12304): sample n warmups, condition the target on each.

Training, for each example x with target y:
  1. with no gradient and the model in eval mode, sample n warmups c_1..c_n (beam search with
     sampling, at most `warmup_len` new tokens); a warmup ends at the first separator, EOS or
     pad, and is kept as token ids (never decoded and re-encoded);
  2. build the n sequences `c_i SEP y` (encoder-decoder: the decoder side; decoder-only:
     after the prompt) and score all of them in one forward pass, the encoder run once per
     example and its states expanded to the n continuations;
  3. loss `target_mean` (default): mean over i of CE(y | x, c_i), the Jensen upper bound
     E[-log P(y|c,x)] >= -log E[P(y|c,x)]; warmup, separator and prompt positions are masked.
     Variants: `joint` (CE also on c_i and SEP), `reward_weighted` (joint CE weighted by the
     stop-gradient softmax over i of log P(y|c_i,x)), `reinforce` (target term plus REINFORCE
     on log P(c_i|x) with reward -CE_i minus its mean over the n samples). CE is averaged as
     `loss_normalization` says: `token` (default, as SFT's) over all counted tokens of the
     n x B sequences, so that n = 1 with an empty warmup and separator is exactly SFT's loss;
     `sequence`: each sequence's mean, then the mean over sequences.
The conditioned pass (step 2) runs inside the model's own forward (`route_conditioned_forward`),
so that a DDP or FSDP wrapper around the model sees it: gradients are all-reduced as SFT's.
Sampling (step 1) uses the model inside the wrapper.
Decoding: generate the warmup (beam or sampled), append SEP, beam-search the target; the
hypothesis is the text after SEP. Every generation setting comes from the config
(repro.decoding), never from the checkpoint's generation_config.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F
from transformers import StoppingCriteria, StoppingCriteriaList

from repro.batching import IGNORE, pad
from repro.decoding import generation_config
from repro.device import unwrap_model
from repro.methods.base import Method, generate, row_losses
from repro.methods.options import WarmupOptions
from repro.methods.sampling import beam_sample
from repro.models import DECODER_ONLY, ENCODER_DECODER


def separator_problem(tokenizer, separator: str) -> str | None:
    """Why `separator` cannot serve with this tokenizer, or None: it must encode to ids without
    <unk> that decode back to it (spaces at either end aside: SentencePiece drops a leading
    one). A normaliser that maps it to plain space (mT5 turns "\n" into "▁") fails."""
    ids = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if not ids or tokenizer.unk_token_id in ids:
        return f"{separator!r} encodes to {ids} (empty or <unk>)"
    back = tokenizer.decode(ids)
    if not separator.strip(" ") or back.strip(" ") != separator.strip(" "):
        return f"{separator!r} encodes to {ids}, which decode to {back!r}"
    return None


class StopAfterSequence(StoppingCriteria):
    """model.generate's stop when the generated tokens (after `prompt_len`) end with `ids`: the
    separator ends a warmup in `generate` as in the KV sampler."""

    def __init__(self, ids: list[int], prompt_len: int) -> None:
        self.ids, self.prompt_len = list(ids), prompt_len

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        k = len(self.ids)
        if input_ids.shape[1] - self.prompt_len < k:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return (input_ids[:, -k:] == torch.tensor(self.ids, device=input_ids.device)).all(-1)


def cut_warmup(ids: list[int], sep: list[int], stop: set[int]) -> tuple[list[int], bool]:
    """The warmup part of generated ids: up to the first separator (found=True) or stop token."""
    for j, tok in enumerate(ids):
        if ids[j : j + len(sep)] == sep:
            return ids[:j], True
        if tok in stop:
            return ids[:j], False
    return list(ids), False


@dataclass
class WarmupBatch:
    """The n conditioned sequences of a batch, one row per (example, warmup), example-major."""

    input_ids: torch.Tensor  # decoder inputs (enc-dec) or full sequences (decoder-only)
    attention_mask: torch.Tensor | None  # decoder-only only
    labels: torch.Tensor  # next-token targets; IGNORE on prompt and padding
    target_mask: torch.Tensor  # label positions holding y (and its EOS)
    warmup_mask: torch.Tensor  # label positions holding c_i and SEP

    def to(self, device) -> WarmupBatch:
        return WarmupBatch(*(None if t is None else t.to(device) for t in (
            self.input_ids, self.attention_mask, self.labels, self.target_mask,
            self.warmup_mask)))


class Warmup(Method):
    name = "warmup"

    def __init__(self, options: dict[str, Any], tokenizer, arch: str) -> None:
        super().__init__(options, tokenizer, arch)
        self.opts = WarmupOptions.from_dict(options)
        problem = separator_problem(tokenizer, self.opts.separator)
        if problem:
            raise ValueError(f"warmup: separator {problem} in this tokenizer; choose another")
        self.sep_ids = tokenizer(self.opts.separator, add_special_tokens=False)["input_ids"]
        self.stop = {t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None}

    def prepare_model(self, model, base_path: str):
        route_conditioned_forward(model)
        return model

    # --- sampling -------------------------------------------------------------------------

    @torch.no_grad()
    def sample_warmups(self, model, batch: dict[str, torch.Tensor]) -> list[list[list[int]]]:
        """n warmups per example as token-id lists, sampled in eval mode without gradient
        (`model`: the plain model, not a DDP/FSDP wrapper)."""
        prompts = prompt_inputs(batch, self.arch, self.tokenizer.pad_token_id)
        n, beams = self.opts.n, max(self.opts.num_beams, self.opts.n)
        was_training = model.training
        model.eval()
        try:
            if self.opts.sampler == "kv":
                # Hugging Face's beam search stops a beam at EOS only (a pad is a token)
                stop = self.stop if self.opts.selection == "gumbel" else {
                    self.tokenizer.eos_token_id}
                out, _ = beam_sample(
                    model, self.arch, prompts["input_ids"], prompts["attention_mask"],
                    num_beams=beams, num_return=n, max_new_tokens=self.opts.warmup_len,
                    stop_ids=stop, pad_id=self.tokenizer.pad_token_id,
                    decoder_start=decoder_start(model), stop_sequences=(self.sep_ids,),
                    do_sample=self.opts.do_sample, top_k=self.opts.top_k,
                    selection=self.opts.selection)
            else:
                cfg = generation_config(
                    {"num_beams": beams, "max_new_tokens": self.opts.warmup_len,
                     "do_sample": self.opts.do_sample, "top_k": self.opts.top_k},
                    self.tokenizer, model.config, num_return_sequences=n)
                start = 1 if self.arch == ENCODER_DECODER else prompts["input_ids"].shape[1]
                out = generate(model, self.arch, prompts, cfg, stopping_criteria=(
                    StoppingCriteriaList([StopAfterSequence(self.sep_ids, start)])))
                if self.arch == ENCODER_DECODER:
                    out = out[:, 1:]  # drop the decoder start token
        finally:
            model.train(was_training)
        rows = [cut_warmup(r, self.sep_ids, self.stop)[0] for r in out.tolist()]
        return [rows[b * n : (b + 1) * n] for b in range(len(rows) // n)]

    # --- the conditioned batch ------------------------------------------------------------

    def build(self, batch: dict[str, torch.Tensor], warmups: list[list[list[int]]],
              decoder_start: int = 0) -> WarmupBatch:
        """Sequences `c_i SEP y` (after the prompt for decoder-only) with their masks."""
        targets = [row[row != IGNORE].tolist() for row in batch["labels"]]
        prompts = prompt_rows(batch, self.arch)
        seqs, labels, tmask, wmask = [], [], [], []
        for b, y in enumerate(targets):
            for c in warmups[b]:
                w = c + self.sep_ids
                if self.arch == ENCODER_DECODER:
                    lab = w + y
                    seqs.append([decoder_start] + lab[:-1])
                    labels.append(lab)
                    wmask.append([1] * len(w) + [0] * len(y))
                else:
                    p = prompts[b]
                    seqs.append(p + w + y)
                    labels.append([IGNORE] * len(p) + w + y)
                    wmask.append([0] * len(p) + [1] * len(w) + [0] * len(y))
                tmask.append([0] * (len(labels[-1]) - len(y)) + [1] * len(y))
        pad_id = self.tokenizer.pad_token_id
        input_ids = pad(seqs, pad_id)
        attn = None
        if self.arch != ENCODER_DECODER:
            attn = pad([[1] * len(s) for s in seqs], 0)
        return WarmupBatch(input_ids, attn, pad(labels, IGNORE), pad(tmask, 0).bool(),
                           pad(wmask, 0).bool())

    def forward_logprobs(self, model, batch: dict[str, torch.Tensor],
                         wb: WarmupBatch) -> torch.Tensor:
        """`conditioned_logprobs` through `model`'s forward (a DDP/FSDP wrapper's included)."""
        route_conditioned_forward(unwrap_model(model))
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"], **{WARMUP_BATCH: wb}, n=self.opts.n,
                     every_label=self.opts.loss != "target_mean")

    # --- the loss ---------------------------------------------------------------------------

    def loss(self, model, batch):
        plain = unwrap_model(model)
        t0 = time.perf_counter()
        warmups = self.sample_warmups(plain, batch)
        t1 = time.perf_counter()
        wb = self.build(batch, warmups, decoder_start(plain)).to(batch["input_ids"].device)
        tok = self.forward_logprobs(model, batch, wb)
        tmask, wmask = target_and_warmup_masks(wb, self.arch)
        loss = warmup_loss(tok, tmask, wmask, self.opts.n, self.opts.loss,
                           self.opts.loss_normalization)
        logs = {"sample_seconds": t1 - t0,
                "warmup_tokens": float(sum(len(c) for cs in warmups for c in cs))}
        return loss, logs

    # --- decoding ---------------------------------------------------------------------------

    @torch.no_grad()
    def decode(self, model, batch, decoding):
        start = time.perf_counter()
        sample = self.opts.decode_warmup == "sample"
        cfg = generation_config(decoding, self.tokenizer, model.config, do_sample=sample,
                                num_beams=1 if sample else decoding["num_beams"],
                                max_new_tokens=self.opts.warmup_len)
        out = generate(model, self.arch, batch, cfg)
        if self.arch == ENCODER_DECODER:
            out = out[:, 1:]
        cut = [cut_warmup(r, self.sep_ids, self.stop) for r in out.tolist()]
        prefixes = [c + self.sep_ids for c, _ in cut]
        targets = self.decode_targets(model, batch, prefixes, decoding)
        secs = (time.perf_counter() - start) / len(cut)
        return [{"hypothesis": self.tokenizer.decode(t, skip_special_tokens=True).strip(),
                 "warmup": self.tokenizer.decode(c, skip_special_tokens=True).strip(),
                 "separator_found": found, "decode_seconds": secs}
                for t, (c, found) in zip(targets, cut, strict=True)]

    def decode_targets(self, model, batch, prefixes: list[list[int]],
                       decoding: dict[str, Any]) -> list[list[int]]:
        """Beam-search the target after each forced prefix `c SEP`; returns the new ids."""
        cfg = generation_config(decoding, self.tokenizer, model.config)
        pad_id = self.tokenizer.pad_token_id
        if self.arch != ENCODER_DECODER:
            prompts = prompt_rows(batch, self.arch)
            rows = [p + w for p, w in zip(prompts, prefixes, strict=True)]
            ids = pad(rows, pad_id, left=True).to(batch["input_ids"].device)
            mask = pad([[1] * len(r) for r in rows], 0, left=True).to(ids.device)
            out = generate(model, self.arch, {"input_ids": ids, "attention_mask": mask}, cfg)
            return [strip_specials(r, self.stop) for r in out.tolist()]
        results: list[list[int]] = [[] for _ in prefixes]
        by_len: dict[int, list[int]] = {}
        for i, p in enumerate(prefixes):  # equal-length decoder prefixes batch together
            by_len.setdefault(len(p), []).append(i)
        for length, idx in by_len.items():
            sub = {k: v[idx] for k, v in batch.items()}
            dec = torch.tensor([[decoder_start(model)] + prefixes[i] for i in idx],
                               device=batch["input_ids"].device)
            out = generate(model, self.arch, sub, cfg, decoder_input_ids=dec)
            for i, row in zip(idx, out[:, length + 1 :].tolist(), strict=True):
                results[i] = strip_specials(row, self.stop)
        return results


WARMUP_BATCH = "warmup_batch"


def route_conditioned_forward(model) -> None:
    """Make `model(warmup_batch=wb, n=..., every_label=..., input_ids=..., attention_mask=...,
    labels=...)` return `conditioned_logprobs`, computed inside the model's own forward; any
    other call reaches the model's forward unchanged (generate, SFT-style calls). A DDP or FSDP
    wrapper calls its module's forward, so the conditioned pass runs under the wrapper (its
    gradient hooks fire, as for SFT). Idempotent; nothing of it is saved with the model."""
    if getattr(model, "_plain_forward", None) is not None:
        return
    # bound methods, not closures: a deep copy of the model then routes to the copy
    model._plain_forward = model.forward
    model.forward = MethodType(_routed_forward, model)


def _routed_forward(self, *args, **kwargs):
    wb = kwargs.pop(WARMUP_BATCH, None)
    if wb is None:
        return self._plain_forward(*args, **kwargs)
    return conditioned_logprobs(self, kwargs, wb, kwargs.pop("n"), kwargs.pop("every_label"))


def conditioned_logprobs(model, batch: dict[str, torch.Tensor], wb: WarmupBatch, n: int,
                         every_label: bool) -> torch.Tensor:
    """Log-probability of each label token [B*n, T], 0 where the loss does not read it.

    The encoder (decoder-only: the prompt) runs once per example and its states (the prompt's
    KV cache) are expanded to the n continuations; the LM head and log-softmax run only on the
    positions the loss reads (the target; with `every_label`, every labelled position).
    """
    if model.config.is_encoder_decoder:
        enc = model.get_encoder()(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"])
        hidden = enc.last_hidden_state.repeat_interleave(n, dim=0)  # expand, not recompute
        mask = batch["attention_mask"].repeat_interleave(n, dim=0)
        h = model.get_decoder()(input_ids=wb.input_ids, encoder_hidden_states=hidden,
                                encoder_attention_mask=mask).last_hidden_state
        if getattr(model.config, "scale_decoder_outputs", False):  # T5's tied-head rescale
            h = h * model.config.d_model ** -0.5
        labels, keep = wb.labels, wb.target_mask
    else:
        h = shared_prompt_hidden(model, batch, wb, n)
        labels, keep = wb.labels[:, 1:], wb.target_mask[:, 1:]
    if every_label:
        keep = labels != IGNORE
    logits = model.get_output_embeddings()(h[keep]).float()
    tok = h.new_zeros(labels.shape, dtype=torch.float32)
    tok[keep] = -F.cross_entropy(logits, labels[keep], reduction="none")
    return tok


def shared_prompt_hidden(model, batch: dict[str, torch.Tensor], wb: WarmupBatch,
                         n: int) -> torch.Tensor:
    """Decoder-only hidden states predicting each token of the n sequences `prompt c_i SEP y`.

    The prompt runs once per example; its KV cache is repeated for the n continuations
    `c_i SEP y`, which run in one pass on top of it (gradients flow back through the cache).
    Returns [B*n, T-1, d] aligned with the shifted labels `wb.labels[:, 1:]`; rows are zero
    at the prompt positions (which no loss reads) except the last, which predicts c_i.
    """
    # B examples, n warmups each: row r of the B*n sequences belongs to example r // n.
    # P = the longest prompt, C = the longest continuation `c_i SEP y`, T = wb's width, d = width
    prompts = prompt_rows(batch, DECODER_ONLY)  # B lists of prompt ids
    p_len = [len(p) for p in prompts]
    rows = wb.input_ids.tolist()  # B*n rows of `prompt c_i SEP y`, right-padded to T
    real = wb.attention_mask.sum(-1).tolist()
    conts = [rows[r][p_len[r // n] : real[r]] for r in range(len(rows))]  # B*n continuations
    dev = wb.input_ids.device
    p_ids = pad(prompts, 0, left=True).to(dev)  # [B, P], left-padded: each ends at column P-1
    p_mask = pad([[1] * k for k in p_len], 0, left=True).to(dev)  # [B, P]
    out = model.base_model(input_ids=p_ids, attention_mask=p_mask,
                           position_ids=(p_mask.cumsum(-1) - 1).clamp_min(0), use_cache=True)
    cache = out.past_key_values
    cache.batch_repeat_interleave(n)  # the prompt's keys and values, [B*n, heads, P, d_head]
    c_ids, c_mask = pad(conts, 0).to(dev), pad([[1] * len(c) for c in conts], 0).to(dev)  # [B*n, C]
    starts = torch.tensor(p_len, device=dev).repeat_interleave(n)  # [B*n] prompt lengths
    c_pos = starts[:, None] + torch.arange(c_ids.shape[1], device=dev)  # [B*n, C] positions
    h_c = model.base_model(input_ids=c_ids, attention_mask=torch.cat(
        [p_mask.repeat_interleave(n, dim=0), c_mask], dim=1), position_ids=c_pos,
        past_key_values=cache, use_cache=True).last_hidden_state  # [B*n, C, d]
    # the hidden state before continuation token j: the prompt's last for j = 0, else h_c[j-1]
    pred = torch.cat([out.last_hidden_state[:, -1:].repeat_interleave(n, dim=0),
                      h_c[:, :-1]], dim=1)  # [B*n, C, d]: pred[:, j] predicts c_ids[:, j]
    h = pred.new_zeros(wb.input_ids.shape[0], wb.input_ids.shape[1] - 1, pred.shape[-1])
    # h[r, t] predicts token t+1 of row r: continuation token j sits at t+1 = p_len + j, so
    # pred[r, j] goes to column p_len - 1 + j (right-padded rows, unlike the prompt batch)
    cols = (starts - 1)[:, None] + torch.arange(pred.shape[1], device=dev)  # [B*n, C]
    valid = c_mask.bool()  # [B*n, C]: real continuation tokens
    row_idx = torch.arange(h.shape[0], device=dev)[:, None].expand_as(cols)
    h[row_idx[valid], cols[valid]] = pred[valid]
    return h


def decoder_start(model) -> int:
    return getattr(model.config, "decoder_start_token_id", None) or 0


def strip_specials(ids: list[int], stop: set[int]) -> list[int]:
    """Generated ids up to the first EOS/pad."""
    for j, t in enumerate(ids):
        if t in stop:
            return ids[:j]
    return ids


def prompt_rows(batch: dict[str, torch.Tensor], arch: str) -> list[list[int]]:
    """The decoder-only prompt of each example: in a training batch the attended positions whose
    label is IGNORE, in a generation batch (no labels) every attended position."""
    if arch == ENCODER_DECODER:
        return [[] for _ in range(batch["input_ids"].shape[0])]
    keep = batch["attention_mask"] == 1
    if "labels" in batch:
        keep &= batch["labels"] == IGNORE
    return [ids[k].tolist() for ids, k in zip(batch["input_ids"], keep, strict=True)]


def prompt_inputs(batch: dict[str, torch.Tensor], arch: str, pad_id: int) -> dict:
    """Generation inputs: the encoder inputs, or the left-padded decoder-only prompts."""
    if arch == ENCODER_DECODER:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    rows = prompt_rows(batch, arch)
    ids = pad(rows, pad_id, left=True).to(batch["input_ids"].device)
    mask = pad([[1] * len(r) for r in rows], 0, left=True).to(ids.device)
    return {"input_ids": ids, "attention_mask": mask}


def target_and_warmup_masks(wb: WarmupBatch, arch: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks aligned with the token log-probs (shifted by one for decoder-only models)."""
    if arch == ENCODER_DECODER:
        return wb.target_mask, wb.warmup_mask
    return wb.target_mask[:, 1:], wb.warmup_mask[:, 1:]


def warmup_loss(tok_logp: torch.Tensor, target_mask: torch.Tensor, warmup_mask: torch.Tensor,
                n: int, variant: str, normalization: str = "token") -> torch.Tensor:
    """The loss of one batch from per-token log-probs [B*n, T] (rows example-major).

    CE_i = -sum over y tokens of log p, joint CE_i = -sum over c_i, SEP and y tokens, each over
    the row's own token count (`sequence`) or the batch's mean count per row (`token`: the
    mean over rows is then the NLL of all counted tokens over their number, as SFT's loss).
    The REINFORCE reward is -CE_i over the row's own count either way (a property of c_i).
    """
    tmask, wmask = target_mask.float(), warmup_mask.float()
    t_sum = -(tok_logp * tmask).sum(-1)  # [B*n]
    ce = row_losses(t_sum, tmask.sum(-1), normalization).view(-1, n)
    if variant == "target_mean":
        return ce.mean()
    jmask = tmask + wmask
    joint = row_losses(-(tok_logp * jmask).sum(-1), jmask.sum(-1), normalization).view(-1, n)
    if variant == "joint":
        return joint.mean()
    if variant == "reward_weighted":
        ll = (tok_logp * tmask).sum(-1).view(-1, n)  # log P(y | c_i, x)
        w = torch.softmax(ll.detach(), dim=-1)
        return (w * joint).sum(-1).mean()
    if variant == "reinforce":
        g = (tok_logp * wmask).sum(-1).view(-1, n)  # log P(c_i SEP | x)
        reward = (-t_sum / tmask.sum(-1).clamp_min(1)).view(-1, n).detach()
        advantage = reward - reward.mean(-1, keepdim=True)
        return ce.mean() - (advantage * g).mean()
    raise ValueError(f"unknown warmup loss '{variant}'")
