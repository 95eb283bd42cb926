"""Beam search with sampling on the KV cache: the warmup sampler of the training step.

`model.generate` spends most of a tiny model's sampling time in per-step bookkeeping; this loop
keeps only what the warmup needs. The encoder (or the prompt) runs once; beams reorder the cache.
Each step scores the K*V continuations of an example's K beams by their sequence log-probability
(with `top_k`, only each beam's top_k next tokens; the others are out). Two selections:

- `gumbel` (default): keep K of the K*V continuations, drawn without replacement in proportion
  to the sequence probability (Gumbel-top-k) when sampling, the K best otherwise. A beam that
  emits a stop token or completes a stop sequence is finished: it keeps its score and its slot
  and only extends with padding. The returned sequences are the K beams, best score first.
- `hf`: Hugging Face's beam search with sampling (transformers 5,
  GenerationMixin._beam_search): draw 2K continuations without replacement; the K best
  unfinished ones by score run on; those of the first K draws that finish enter a pool of K
  finished hypotheses ranked by score / length (length_penalty 1); an example stops once its
  best running beam cannot beat the pool's worst (early_stopping False); at the last step every
  first-K draw finishes. Returns the pool, best first. With `top_k` 50 and the sampler's stop
  criteria (EOS, the separator), the draws follow the distribution of
  `model.generate(do_sample=True, num_beams=K, top_k=50)` (tests/test_sampling.py).
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from repro.methods.options import SELECTIONS  # gumbel | hf
from repro.models import ENCODER_DECODER

OUT = -1.0e9  # Hugging Face's score of an excluded candidate (finite: no inf - inf)


def _gumbel(shape: torch.Size, device) -> torch.Tensor:
    u = torch.rand(shape, device=device).clamp_(1e-20, 1.0)
    return -torch.log(-torch.log(u))


def top_k_filter(logp: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's log-probs outside its k largest set to -inf (ties kept); k 0 = no filter
    (transformers' TopKLogitsWarper)."""
    if k <= 0 or k >= logp.shape[-1]:
        return logp
    kth = logp.topk(k, dim=-1).values[..., -1:]
    return logp.masked_fill(logp < kth, float("-inf"))


class _Steps:
    """Next-token log-probs of B*K rows, one token a step on the KV cache; rows reorderable."""

    def __init__(self, model, arch: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 k: int, decoder_start: int) -> None:
        self.model, self.arch, self.cache = model, arch, None
        b, dev = input_ids.shape[0], input_ids.device
        expand = torch.arange(b, device=dev).repeat_interleave(k)
        self.mask = attention_mask[expand]
        if arch == ENCODER_DECODER:
            hidden = model.get_encoder()(input_ids=input_ids,
                                         attention_mask=attention_mask).last_hidden_state[expand]
            self.step_in = {"encoder_outputs": BaseModelOutput(last_hidden_state=hidden),
                            "attention_mask": self.mask,
                            "decoder_input_ids": torch.full((b * k, 1), decoder_start,
                                                            device=dev)}
        else:
            positions = (self.mask.cumsum(-1) - 1).clamp_min(0)
            self.step_in = {"input_ids": input_ids[expand], "attention_mask": self.mask,
                            "position_ids": positions}

    def logprobs(self) -> torch.Tensor:
        out = self.model(**self.step_in, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)

    def advance(self, origin: torch.Tensor, token: torch.Tensor) -> None:
        """Rows continue from rows `origin` [B*K] with the tokens `token` [B*K, 1]."""
        self.cache.reorder_cache(origin)
        if self.arch == ENCODER_DECODER:
            self.step_in = {**self.step_in, "decoder_input_ids": token}
        else:
            self.mask = torch.cat([self.mask[origin], self.mask.new_ones(len(origin), 1)], dim=1)
            self.step_in = {"input_ids": token, "attention_mask": self.mask,
                            "position_ids": self.step_in["position_ids"][origin][:, -1:] + 1}


def _finishes(seqs: torch.Tensor, stops: torch.Tensor,
              stop_sequences: tuple[list[int], ...]) -> torch.Tensor:
    """Rows [..., t] whose last token is a stop token or that end with a stop sequence."""
    done = torch.isin(seqs[..., -1], stops)
    for stop_seq in stop_sequences:
        if seqs.shape[-1] >= len(stop_seq):
            tail = torch.tensor(stop_seq, device=seqs.device)
            done |= (seqs[..., -len(stop_seq):] == tail).all(-1)
    return done


@torch.no_grad()
def beam_sample(model, arch: str, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                num_beams: int, num_return: int, max_new_tokens: int, stop_ids: set[int],
                pad_id: int, decoder_start: int = 0, stop_sequences: tuple[list[int], ...] = (),
                do_sample: bool = True, top_k: int = 0,
                selection: str = "gumbel") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample `num_return` continuations per prompt (decoder-only prompts left-padded).

    Returns the new ids [B*num_return, L] (example-major, best first, pad after a stop) and
    their log-probabilities [B*num_return] (sum over the tokens up to and including the stop).
    """
    if num_return > num_beams:
        raise ValueError(f"num_return ({num_return}) must be <= num_beams ({num_beams})")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if selection == "hf" and 0 < top_k < 2 * num_beams:  # transformers' multinomial fails too
        raise ValueError(f"selection hf draws 2 x {num_beams} continuations: top_k ({top_k}) "
                         f"must be 0 or at least {2 * num_beams}")
    steps = _Steps(model, arch, input_ids, attention_mask, num_beams, decoder_start)
    stops = torch.tensor(sorted(stop_ids), device=input_ids.device)
    # transformers keeps at least 2 tokens a beam (an EOS and one more) whatever top_k says
    k_tokens = max(top_k, 2 if num_beams > 1 else 1) if top_k > 0 else 0
    loop = _hf_loop if selection == "hf" else _gumbel_loop
    seqs, rank, scores = loop(steps, input_ids.shape[0], num_beams, max_new_tokens, stops,
                              stop_sequences, pad_id, do_sample, k_tokens)
    b, k = scores.shape
    order = rank.argsort(dim=-1, descending=True, stable=True)[:, :num_return]
    rows = (torch.arange(b, device=scores.device).view(-1, 1) * k + order).view(-1)
    return seqs[rows], scores.gather(1, order).view(-1)


def _gumbel_loop(steps: _Steps, b: int, k: int, max_new: int, stops: torch.Tensor,
                 stop_sequences, pad_id: int, do_sample: bool,
                 top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sequences [B*K, t], their ranking [B, K], their log-probabilities [B, K])."""
    dev = stops.device
    scores = torch.full((b, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # the K beams start identical: expand only the first
    seqs = torch.empty((b * k, 0), dtype=torch.long, device=dev)
    done = torch.zeros(b * k, dtype=torch.bool, device=dev)
    for _ in range(max_new):
        logp = top_k_filter(steps.logprobs(), top_k)
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
        done = done[origin] | _finishes(seqs, stops, stop_sequences)
        if done.all():
            break
        steps.advance(origin, token)
    return seqs, scores, scores


def _hf_loop(steps: _Steps, b: int, k: int, max_new: int, stops: torch.Tensor, stop_sequences,
             pad_id: int, do_sample: bool,
             top_k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the pool [B*K, max_new], its ranking score / length [B, K], log-probabilities)."""
    dev = stops.device
    rows = torch.arange(b, device=dev).view(-1, 1)
    scores = torch.full((b, k), OUT, device=dev)
    scores[:, 0] = 0.0
    seqs = torch.empty((b * k, 0), dtype=torch.long, device=dev)
    pool = torch.full((b, k, max_new), pad_id, dtype=torch.long, device=dev)
    pool_norm = torch.full((b, k), OUT, device=dev)  # score / length, the pool's ranking
    pool_raw = torch.full((b, k), OUT, device=dev)
    pool_done = torch.zeros((b, k), dtype=torch.bool, device=dev)
    open_ = torch.ones(b, dtype=torch.bool, device=dev)  # the pool can still improve
    first_k = torch.arange(2 * k, device=dev) < k
    for t in range(1, max_new + 1):
        logp = top_k_filter(steps.logprobs(), top_k)
        vocab = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(b, k * vocab)
        key = cand + _gumbel(cand.shape, dev) if do_sample else cand
        draw = key.topk(2 * k, dim=-1).indices  # [B, 2K], in draw order
        d_score = cand.gather(1, draw)
        d_seqs = torch.cat([seqs[(rows * k + draw // vocab).view(-1)],
                            (draw % vocab).view(-1, 1)], dim=1).view(b, 2 * k, t)
        hit = _finishes(d_seqs, stops, stop_sequences) | (t == max_new)
        # the K best unfinished draws run on
        run = d_score + hit.float() * OUT
        keep = run.topk(k, dim=-1).indices
        scores = run.gather(1, keep)
        # the first K draws that finish enter the pool if they beat its worst
        new = hit & first_k & open_.view(-1, 1)
        norm = torch.where(new, d_score / t, d_score / t + OUT)
        padded = torch.full((b, 2 * k, max_new), pad_id, dtype=torch.long, device=dev)
        padded[..., :t] = d_seqs
        best = torch.cat([pool_norm, norm], dim=1).topk(k, dim=-1).indices
        pool = torch.cat([pool, padded], dim=1)[rows, best]
        pool_norm = torch.cat([pool_norm, norm], dim=1).gather(1, best)
        pool_raw = torch.cat([pool_raw, d_score], dim=1).gather(1, best)
        pool_done = torch.cat([pool_done, new], dim=1).gather(1, best)
        worst = torch.where(pool_done, pool_norm.min(-1, keepdim=True).values, OUT)
        open_ &= (scores[:, :1] / t > worst).any(-1)
        if not open_.any() or hit.all():
            break
        origin = (rows * k + draw.gather(1, keep) // vocab).view(-1)
        token = (draw.gather(1, keep) % vocab).view(-1, 1)
        seqs = d_seqs.gather(1, keep[..., None].expand(-1, -1, t)).view(b * k, t)
        steps.advance(origin, token)
    return pool.view(b * k, max_new), pool_norm, pool_raw
