"""Beam search with sampling on the KV cache: the warmup sampler of the training step.

`model.generate` spends most of a tiny model's sampling time in per-step bookkeeping; this loop
keeps only what the warmup needs. Each step scores the K*V continuations of an example's K
beams by their sequence log-probability and keeps K of them: drawn without replacement in
proportion to the sequence probability (Gumbel-top-k) when sampling, the K best otherwise. A
beam that emits a stop token or completes a stop sequence is finished: it keeps its score and
only extends with padding. The encoder (or the prompt) runs once; beams reorder the cache.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from repro.models import ENCODER_DECODER


def _gumbel(shape: torch.Size, device) -> torch.Tensor:
    u = torch.rand(shape, device=device).clamp_(1e-20, 1.0)
    return -torch.log(-torch.log(u))


@torch.no_grad()
def beam_sample(model, arch: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                num_beams: int, num_return: int, max_new_tokens: int, stop_ids: set[int],
                pad_id: int, decoder_start: int = 0, stop_sequences: tuple[list[int], ...] = (),
                do_sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample `num_return` continuations per prompt (decoder-only prompts left-padded).

    Returns the new ids [B*num_return, L] (example-major, best first, pad after a stop) and
    their log-probabilities [B*num_return] (sum over the tokens up to and including the stop).
    """
    if num_return > num_beams:
        raise ValueError(f"num_return ({num_return}) must be <= num_beams ({num_beams})")
    b, k, dev = input_ids.shape[0], num_beams, input_ids.device
    expand = torch.arange(b, device=dev).repeat_interleave(k)
    mask = attention_mask[expand]
    if arch == ENCODER_DECODER:
        hidden = model.get_encoder()(input_ids=input_ids,
                                     attention_mask=attention_mask).last_hidden_state[expand]
        step_in = {"encoder_outputs": BaseModelOutput(last_hidden_state=hidden),
                   "attention_mask": mask,
                   "decoder_input_ids": torch.full((b * k, 1), decoder_start, device=dev)}
    else:
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        step_in = {"input_ids": input_ids[expand], "attention_mask": mask,
                   "position_ids": positions}
    scores = torch.full((b, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # the K beams start identical: expand only the first
    seqs = torch.empty((b * k, 0), dtype=torch.long, device=dev)
    done = torch.zeros(b * k, dtype=torch.bool, device=dev)
    stops = torch.tensor(sorted(stop_ids), device=dev)
    cache = None
    for _ in range(max_new_tokens):
        out = model(**step_in, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        vocab = logp.shape[-1]
        logp[done] = float("-inf")
        logp[done, pad_id] = 0.0
        cand = (scores.view(-1, 1) + logp).view(b, k * vocab)
        key = cand + _gumbel(cand.shape, dev) if do_sample else cand
        pick = key.topk(k, dim=-1).indices  # [B, K]
        scores = cand.gather(1, pick)
        origin = (torch.arange(b, device=dev).view(-1, 1) * k + pick // vocab).view(-1)
        token = (pick % vocab).view(-1, 1)
        seqs = torch.cat([seqs[origin], token], dim=1)
        done = done[origin] | torch.isin(token.view(-1), stops)
        for stop_seq in stop_sequences:
            if seqs.shape[1] >= len(stop_seq):
                tail = torch.tensor(stop_seq, device=dev)
                done |= (seqs[:, -len(stop_seq):] == tail).all(-1)
        if done.all():
            break
        cache.reorder_cache(origin)
        if arch == ENCODER_DECODER:
            step_in = {"encoder_outputs": step_in["encoder_outputs"], "attention_mask": mask,
                       "decoder_input_ids": token}
        else:
            mask = torch.cat([mask[origin], mask.new_ones(b * k, 1)], dim=1)
            step_in = {"input_ids": token, "attention_mask": mask,
                       "position_ids": step_in["position_ids"][origin][:, -1:] + 1}
    order = scores.argsort(dim=-1, descending=True)[:, :num_return]
    rows = (torch.arange(b, device=dev).view(-1, 1) * k + order).view(-1)
    return seqs[rows], scores.gather(1, order).view(-1)
