"""Semiparametric token-sequence co-supervision (arXiv 2403.09024).

Two decoder-only models: Gen (with LM head; its tokenizer gains the official `<PAD>`, `[Cs]`,
`[Ce]`, `[Ret]`, repro.cosup_markup) and Embseq (a decoder body; by default a copy of the run's
base model, or `embseq_path`). A training instance is a prompt and an output in the official
markup, each `[Ret]` linked to a passage (repro.data.cosup_format); Gen reads

    prompt  [Ret] title :: text [Cs] statement [Ce] ... </s>

where the passage is inserted after `[Ret]` unless the data already holds it there.

  * NTP: next-token cross-entropy of Gen over the output tokens. The inserted passage and its
    `[Cs]` are given, not generated: masked by default (`mask_passage`); the official code
    (`loss_mask_context="no_mask"`) also trains on them: `mask_passage: false`.
  * NSP: query = the last-layer hidden state at each `[Ret]` input position (through a learned
    linear map if Embseq is wider or narrower); sequence embedding = Embseq's last-layer state
    at the passage's last real token (`embed_position`, see repro.retrieval). InfoNCE
    (`nsp_loss`) over the batch's distinct passages, plus, under torch.distributed, the other
    ranks' passages gathered without gradient (`gather_negatives`).
  * `supervision`: `ntp+nsp` = NTP + nsp_weight * NSP (both models train; NSP reaches Gen only
    through its hidden states, not its LM head); `nsp` = NSP alone; `ntp` = NTP alone, Embseq
    frozen (our ablations); `separate` = the paper's baseline, two trainings (stage `gen`: Gen
    with NTP alone, official run_train_genonly.py; stage `embseq`: one body that is both the
    query and the sequence encoder, trained with NSP, official run_train.py --single) and
    decoding with Embseq's embedding of the sequence up to `[Ret]` as the query (official
    run_inference_ntp.py --retriever llama --single, utils/inference_utils.py 443-462).

Decoding (utils/inference_utils.py 775-982): generate with Gen (sampling or greedy, every
setting from the config, `repro.decoding`) until `[Ret]`, `[Ce]` or `</s>`; at `[Ret]`
the query retrieves the top-1 passage (whole index, or the record's `candidates`), which is
inserted followed by `[Cs]`; `[Cs]` is never generated, `[Ce]` only inside a span, and an open
span is closed with a forced `[Ce]` before a new `[Ret]` and at the end. `max_retrievals` caps
retrievals (None: no cap, as official); `decoding.max_total_len` caps the whole sequence
(official max_length 1024). Predictions: `hypothesis` (the generated text without markup),
`raw_output` (generated and inserted text, with markup), `retrieved` (passage ids in retrieval
order), `spans` ({"text", "passage_id"} per `[Cs] ... [Ce]`, repro.cosup_markup.parse_spans).

Output directories: model/ = Gen + tokenizer (+ query_projection.safetensors when the widths
differ, cosup.json = the options); model/embseq/ = Embseq + its tokenizer +
sequence_encoder.json (joint runs). For `separate`: model/ = Gen (stage gen), and the stage
embseq job writes the Embseq layout into its own directory (the run's embseq/).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from repro.batching import IGNORE, pad, prompt_options, prompt_text
from repro.cosup_markup import CITE_END, CITE_START, MARKUP, RET, add_official_tokens, parse_spans
from repro.data.cosup_format import inline_passages, instances_from_records
from repro.decoding import generate, generation_config
from repro.errors import ConfigError
from repro.io import DataError, read_jsonl, write_json
from repro.methods.base import Method
from repro.methods.cosup_options import SUPERVISIONS, CoSupOptions
from repro.models import DECODER_ONLY, ENCODER_DECODER, load_base_model, load_model, load_tokenizer
from repro.retrieval import (
    EncoderSettings,
    PassageIndex,
    hidden_states,
    pad_batch,
    passage_ids,
    passage_text,
    read_passages,
    sequence_embedding,
)

log = logging.getLogger(__name__)

EMBSEQ_DIR = "embseq"
PROJECTION_FILE = "query_projection.safetensors"


# --- the NSP loss --------------------------------------------------------------------------


def nsp_loss(queries: torch.Tensor, passages: torch.Tensor, positives: torch.Tensor,
             temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE: mean over the Q queries of -log softmax(q . p / temperature)[positive].

    queries [Q, d], passages [P, d], positives [Q] (index into passages). Q = 0 gives a zero
    that keeps the graph.
    """
    if queries.ndim != 2 or passages.ndim != 2 or queries.shape[1] != passages.shape[1]:
        raise ValueError(f"nsp_loss: queries [Q, d] and passages [P, d] needed, got "
                         f"{list(queries.shape)} and {list(passages.shape)}")
    if positives.shape != (queries.shape[0],):
        raise ValueError(f"nsp_loss: positives must be [{queries.shape[0]}], "
                         f"got {list(positives.shape)}")
    if queries.shape[0] == 0:
        return (queries.sum() + passages.sum()) * 0.0
    logits = queries.float() @ passages.float().T / temperature
    return F.cross_entropy(logits, positives)


def passage_key(pid: str) -> int:
    """A stable int64 of a passage id, to recognise the same passage across ranks."""
    return int.from_bytes(hashlib.blake2b(pid.encode(), digest_size=8).digest(), "little",
                          signed=True)


def gather_negatives(passages: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The local passages [P, d] followed by the other ranks' passages that are not already
    present (by key), gathered without gradient. Unchanged outside torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return passages
    world, rank = dist.get_world_size(), dist.get_rank()
    n = torch.tensor([passages.shape[0]], device=passages.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    width = max(int(s) for s in sizes)
    vec = passages.detach().new_zeros((width, passages.shape[1]))
    vec[: passages.shape[0]] = passages.detach()
    key = keys.new_zeros(width)
    key[: keys.shape[0]] = keys
    vecs, ks = [torch.zeros_like(vec) for _ in range(world)], [torch.zeros_like(key)
                                                                for _ in range(world)]
    dist.all_gather(vecs, vec)
    dist.all_gather(ks, key)
    seen = set(keys.tolist())
    extra = []
    for r in range(world):
        if r == rank:
            continue
        for i in range(int(sizes[r])):
            k = int(ks[r][i])
            if k not in seen:
                seen.add(k)
                extra.append(vecs[r][i])
    return torch.cat([passages, torch.stack(extra)]) if extra else passages


# --- the joint module the trainer optimises --------------------------------------------------


def ntp_loss(gen, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions; LM head only where it is read."""
    h, labels = hidden[:, :-1], labels[:, 1:]
    keep = labels != IGNORE
    if not keep.any():
        return hidden.sum() * 0.0
    logits = gen.get_output_embeddings()(h[keep]).float()
    return F.cross_entropy(logits, labels[keep])


def training_losses(opts: CoSupOptions) -> frozenset[str]:
    """The losses one training job computes: by supervision, or by stage for `separate`."""
    if opts.stage == "gen":
        return frozenset({"ntp"})
    if opts.stage == "embseq":
        return frozenset(opts.separate_embseq_loss.split("+"))
    return frozenset(opts.supervision.split("+"))


class CoSupModel(nn.Module):
    """Gen + Embseq (+ query projection); forward returns the losses of one batch. Without an
    Embseq module (`separate`'s Embseq training) Gen's body encodes queries and passages."""

    def __init__(self, gen, embseq, projection: nn.Linear | None, ret_id: int,
                 opts: CoSupOptions) -> None:
        super().__init__()
        self.gen, self.embseq, self.projection = gen, embseq, projection
        self.ret_id, self.opts = ret_id, opts
        self.losses = training_losses(opts)
        self.config = gen.config

    def sequence_encoder(self):
        return self.embseq if self.embseq is not None else self.gen.base_model

    def queries(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states at the [Ret] positions (row-major), in Embseq's space."""
        q = hidden[input_ids == self.ret_id]
        return self.projection(q) if self.projection is not None else q

    def sequences(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = hidden_states(self.sequence_encoder(), input_ids, attention_mask)
        return sequence_embedding(h, attention_mask, self.opts.embed_position)

    def forward(self, input_ids, attention_mask, labels, passage_input_ids=None,
                passage_attention_mask=None, positives=None,
                passage_keys=None) -> dict[str, torch.Tensor]:
        hidden = hidden_states(self.gen.base_model, input_ids, attention_mask)
        out: dict[str, torch.Tensor] = {}
        if "ntp" in self.losses:
            out["ntp_loss"] = ntp_loss(self.gen, hidden, labels)
        if "nsp" in self.losses:
            q = self.queries(hidden, input_ids)
            if q.shape[0] != positives.shape[0]:
                raise ValueError(f"{q.shape[0]} {RET} positions but {positives.shape[0]} "
                                 "linked passages in the batch")
            p = self.sequences(passage_input_ids, passage_attention_mask)
            if self.opts.normalize:
                q, p = F.normalize(q, dim=-1), F.normalize(p, dim=-1)
            if self.opts.gather_negatives:
                p = gather_negatives(p, passage_keys)
            out["nsp_loss"] = nsp_loss(q, p, positives, self.opts.temperature)
            with torch.no_grad():
                hit = (q.float() @ p.float().T).argmax(-1) == positives
                out["nsp_acc"] = hit.float().mean() if len(hit) else hit.float().sum()
        return out

    def state_dict(self, *args, **kwargs):
        """Tied tensors (Gen's LM head and input embeddings) once: safetensors refuses shared
        storage; load_state_dict(strict=False) restores both through the tie."""
        seen, out = set(), type(sd := super().state_dict(*args, **kwargs))()
        for k, v in sd.items():
            ref = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
            if ref not in seen:
                seen.add(ref)
                out[k] = v
        return out

    @property
    def _keys_to_ignore_on_save(self) -> list[str]:
        """The tied keys state_dict leaves out (the Trainer re-ties them after a resume)."""
        return sorted(set(super().state_dict()) - set(self.state_dict()))

    def tie_weights(self) -> None:
        self.gen.tie_weights()


# --- batches -------------------------------------------------------------------------------


@dataclass
class CoSupCollator:
    """Right-padded Gen sequences, plus the batch's distinct linked passages for Embseq (none
    when the job trains no Embseq)."""

    pad_id: int
    passage_pad_id: int | None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([f["input_ids"] for f in features], self.pad_id)
        batch = {"input_ids": ids, "attention_mask": mask,
                 "labels": pad([f["labels"] for f in features], IGNORE)}
        if self.passage_pad_id is None:
            return batch
        slot: dict[str, int] = {}
        rows: list[list[int]] = []
        positives: list[int] = []
        for f in features:
            for pid, toks in zip(f["evidence"], f["evidence_ids"], strict=True):
                if pid not in slot:
                    slot[pid] = len(rows)
                    rows.append(toks)
                positives.append(slot[pid])
        p_ids, p_mask = (pad_batch(rows, self.passage_pad_id) if rows
                         else (torch.zeros((0, 1), dtype=torch.long),) * 2)
        return {**batch, "passage_input_ids": p_ids, "passage_attention_mask": p_mask,
                "positives": torch.tensor(positives, dtype=torch.long),
                "passage_keys": torch.tensor([passage_key(p) for p in slot], dtype=torch.long)}


@dataclass
class DecodeState:
    """One example during decoding: the full sequence, and what was generated / inserted."""

    seq: list[int]
    output: list[int] = field(default_factory=list)  # generated tokens and forced markers
    raw: list[int] = field(default_factory=list)  # generated and inserted tokens
    retrieved: list[str] = field(default_factory=list)
    ret_passages: list[str | None] = field(default_factory=list)  # per [Ret] of raw
    query: list[int] | None = None  # the sequence up to a [Ret] waiting for its passage
    span_open: bool = False
    done: bool = False

    def extend(self, toks: list[int]) -> None:
        self.seq += toks
        self.output += toks
        self.raw += toks

    def insert(self, toks: list[int]) -> None:
        self.seq += toks
        self.raw += toks


# --- the method ----------------------------------------------------------------------------


class CoSup(Method):
    name = "cosup"
    log_keys = ("ntp_loss", "nsp_loss", "nsp_acc")

    def __init__(self, options: dict[str, Any], tokenizer, arch: str) -> None:
        if arch == ENCODER_DECODER:
            raise ConfigError("cosup: needs a decoder-only model (family llama or gpt2)")
        super().__init__(options, tokenizer, arch)
        self.opts = CoSupOptions.from_dict(options)
        add_official_tokens(tokenizer)
        self.ret_id, self.cs_id, self.ce_id = tokenizer.convert_tokens_to_ids(
            [RET, CITE_START, CITE_END])
        self.settings = EncoderSettings(self.opts.embed_position, self.opts.embed_template,
                                        self.opts.max_passage_len, self.opts.normalize,
                                        self.opts.embed_eos)
        self.embseq_tokenizer = None
        self.model: CoSupModel | None = None
        self.index: PassageIndex | None = None
        self.passages: dict[str, dict] = {}
        self.projection: nn.Linear | None = None
        self.query_encoder = None  # `separate` decoding: Embseq encodes the queries

    @classmethod
    def options_for_variant(cls, options: dict[str, Any], variant: str | None) -> dict[str, Any]:
        if "supervision" not in options and variant in SUPERVISIONS:
            return {**options, "supervision": variant}
        return options

    # --- training -------------------------------------------------------------------------

    def prepare_model(self, model, base_path: str) -> CoSupModel:
        """Gen (embeddings resized for the new tokens) + Embseq (+ projection) in one module;
        `separate` trains Gen alone (stage gen) or one body as Embseq (stage embseq)."""
        opts = self.opts
        if opts.supervision == "separate" and opts.stage == "joint":
            raise ConfigError("cosup: supervision `separate` trains in two jobs (stage gen, "
                              "stage embseq); the workflow sets the stage")
        model.resize_token_embeddings(len(self.tokenizer))
        embseq, projection = None, None
        if opts.stage == "embseq":
            self.embseq_tokenizer = self.tokenizer  # it reads Gen's sequences
        elif opts.stage == "joint":
            src = opts.embseq_path or base_path
            embseq = (copy.deepcopy(model.base_model) if opts.embseq_path is None
                      else load_base_model(src))
            self.embseq_tokenizer = load_tokenizer(src, DECODER_ONLY)
            d_gen, d_emb = model.config.hidden_size, embseq.config.hidden_size
            projection = nn.Linear(d_gen, d_emb, bias=False) if d_gen != d_emb else None
            if opts.supervision == "ntp":  # Embseq (and the unused projection) stay as loaded
                embseq.requires_grad_(False)
                if projection is not None:
                    projection.requires_grad_(False)
        self.model = CoSupModel(model, embseq, projection, self.ret_id, opts)
        return self.model

    def insert_ids(self, passage: dict[str, Any]) -> list[int]:
        """The passage inserted after [Ret], as Gen token ids (cut to max_passage_len)."""
        text = passage_text(passage, self.opts.insert_template)
        return self.tokenizer(text, add_special_tokens=False, split_special_tokens=True,
                              truncation=True,
                              max_length=self.opts.max_passage_len)["input_ids"]

    def _text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False,
                              split_special_tokens=True)["input_ids"]

    def encode_instance(self, inst: dict[str, Any], passages: dict[str, dict],
                        training: dict[str, Any], cache: dict[str, tuple]) -> dict[str, Any]:
        """Token ids and NTP labels of one instance, with its linked passages' Embseq ids.

        Passages and their [Cs] are given (labels masked with mask_passage); passage text the
        output already holds between [Ret] and [Cs] is used as it is, else the passage is
        inserted there. max_target_len bounds the labelled output tokens (given passages not
        counted); a [Ret] cut off by it is dropped with its passage. training.max_total_len
        then cuts the whole sequence (the official 1,024 tokens), keeping the passages of the
        [Ret]s left."""
        tok = self.tokenizer
        prompt = prompt_text(inst["source"], training["prompt_suffix"],
                             **prompt_options(training))
        ids = tok(prompt, truncation=True, max_length=training["max_source_len"],
                  split_special_tokens=True)["input_ids"]
        labels = [IGNORE] * len(ids)
        budget = training["max_target_len"] - 1  # room for </s>
        mask = self.opts.mask_passage
        evidence: list[str] = []
        inline = inline_passages(inst["output"])
        in_passage = False  # between a [Ret] whose passage the data holds and its [Cs]

        def emit(toks: list[int], labelled: bool) -> None:
            ids.extend(toks)
            labels.extend(toks if labelled else [IGNORE] * len(toks))

        for chunk in _markup_chunks(inst["output"]):
            if chunk == RET:
                if budget < 1:
                    break
                pid = inst["evidence"][len(evidence)]
                if pid not in cache:
                    cache[pid] = (self.insert_ids(passages[pid]),
                                  passage_ids(self.embseq_tokenizer, passages[pid],
                                              self.settings)
                                  if self.embseq_tokenizer is not None else None)
                emit([self.ret_id], True)
                budget -= 1
                in_passage = inline[len(evidence)]
                if not in_passage:
                    emit(cache[pid][0], not mask)
                evidence.append(pid)
            elif chunk == CITE_START:
                emit([self.cs_id], not mask)
                in_passage = False
            elif chunk == CITE_END:
                if budget >= 1:
                    emit([self.ce_id], True)
                    budget -= 1
            elif in_passage:
                emit(self._text_ids(chunk)[: self.opts.max_passage_len], not mask)
            elif chunk.strip():
                toks = self._text_ids(chunk)[: max(budget, 0)]
                emit(toks, True)
                budget -= len(toks)
        emit([tok.eos_token_id], True)
        cap = training.get("max_total_len")
        if cap and len(ids) > cap:
            ids, labels = ids[:cap], labels[:cap]
            evidence = evidence[: ids.count(self.ret_id)]
        return {"id": inst["id"], "input_ids": ids, "labels": labels, "evidence": evidence,
                "evidence_ids": [cache[p][1] for p in evidence]}

    def encode_split(self, path: Path, training: dict[str, Any]) -> list[dict]:
        """Instances of data_dir/{split}.jsonl linked to data_dir/passages.jsonl, encoded."""
        if self.model is None:
            raise RuntimeError("cosup: prepare_model must run before encode_split")
        records = read_jsonl(path)
        if not records:
            raise DataError(f"{path}: no records to train on")
        passages = {p["id"]: p for p in read_passages(path.parent / "passages.jsonl")}
        instances, dropped = instances_from_records(records, passages, where=str(path))
        if dropped:
            log.warning("%s: %d of %d records have no linked passage and are skipped", path,
                        dropped, len(records))
        cache: dict[str, tuple] = {}
        return [self.encode_instance(i, passages, training, cache) for i in instances]

    def collator(self) -> CoSupCollator:
        emb = self.embseq_tokenizer
        return CoSupCollator(self.tokenizer.pad_token_id,
                             None if emb is None else emb.pad_token_id)

    def loss(self, model, batch):
        out = model(**batch)
        if "ntp_loss" in out and "nsp_loss" in out:
            loss = out["ntp_loss"] + self.opts.nsp_weight * out["nsp_loss"]
        else:
            loss = out["ntp_loss"] if "ntp_loss" in out else out["nsp_loss"]
        return loss, {k: float(v.detach()) for k, v in out.items()}

    def generator_parameters(self, model):
        """Gen's decoder body (the official clipping scope: `model.model`, without the LM
        head or Embseq; utils/train_utils.py 95)."""
        return getattr(model, "module", model).gen.base_model.parameters()

    def save(self, trainer, out: Path) -> None:
        """model/ = Gen + tokenizer (+ projection, cosup.json) (+ model/embseq/ = Embseq);
        stage embseq: `out` = Embseq + tokenizer + sequence_encoder.json."""
        if not trainer.args.should_save:
            return
        cm = self.model
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "cosup.json", asdict(self.opts))
        if self.opts.stage == "embseq":
            cm.gen.base_model.save_pretrained(str(out))
            self.tokenizer.save_pretrained(str(out))
            self.settings.save(out)
            return
        cm.gen.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        if cm.embseq is None:
            return
        emb_dir = out / EMBSEQ_DIR
        cm.embseq.save_pretrained(str(emb_dir))
        self.embseq_tokenizer.save_pretrained(str(emb_dir))
        self.settings.save(emb_dir)
        if cm.projection is not None:
            from safetensors.torch import save_file

            save_file({"weight": cm.projection.weight.detach().cpu().contiguous()},
                      str(out / PROJECTION_FILE))

    # --- decoding -------------------------------------------------------------------------

    @classmethod
    def load_for_decoding(cls, model_ref: str | None, arch: str, options: dict[str, Any],
                          inputs: dict[str, Any]):
        """(Gen, its tokenizer): the run's trained Gen (model_ref), or `checkpoints.gen`; the
        pair is checked (repro.cosup_checkpoints)."""
        from repro.cosup_checkpoints import check_pair_tokenizers, check_rows, pair_tokenizer

        opts = CoSupOptions.from_dict(options)
        ck = opts.checkpoints or {}
        gen = ck.get("gen") or model_ref
        if not gen:
            raise ConfigError("cosup: decoding needs a trained model or checkpoints.gen")
        tokenizer = pair_tokenizer(str(gen), ck.get("tokenizer"))
        model = load_model(str(gen), DECODER_ONLY)
        check_rows(model, tokenizer, str(gen), "Gen")
        embseq = ck.get("embseq") or inputs.get("embseq")
        if embseq:
            check_pair_tokenizers(tokenizer, str(gen), str(embseq),
                                  opts.supervision == "separate")
        return model, tokenizer

    def prepare_decoding(self, model_dir: Path | None, inputs: dict[str, Any]) -> None:
        """Load the index (inputs["index"], with the search settings inputs["search"]), the
        passages (inputs["passages"]), the query projection saved beside Gen, if any, and for
        `separate` the Embseq that encodes the queries (inputs["embseq"] or
        checkpoints.embseq)."""
        for key in ("index", "passages"):
            if key not in inputs:
                raise ConfigError(f"cosup: decoding needs inputs[{key!r}] (index: a directory "
                                  "from repro.retrieval.merge_shards; passages: passages.jsonl)")
        self.index = PassageIndex.load(Path(inputs["index"]), inputs.get("search"))
        self.passages = {p["id"]: p for p in read_passages(Path(inputs["passages"]))}
        proj = Path(model_dir) / PROJECTION_FILE if model_dir else None
        if proj is not None and proj.is_file():
            from safetensors.torch import load_file

            weight = load_file(str(proj))["weight"]
            self.projection = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            self.projection.weight.data.copy_(weight)
        if self.opts.supervision == "separate":
            ref = (self.opts.checkpoints or {}).get("embseq") or inputs.get("embseq")
            if not ref:
                raise ConfigError("cosup: `separate` decodes with its Embseq: give "
                                  "inputs['embseq'] or checkpoints.embseq")
            from repro.device import device

            enc = load_base_model(str(ref))
            if enc.get_input_embeddings().weight.shape[0] < len(self.tokenizer):
                log.warning("Embseq %s: embeddings resized to the tokenizer's %d tokens (as "
                            "the official run_inference_ntp.py 587 does)", ref,
                            len(self.tokenizer))
                enc.resize_token_embeddings(len(self.tokenizer))
            self.query_encoder = enc.to(device()).eval()

    def record_candidates(self, rec: dict[str, Any]) -> list[str] | None:
        """The record's candidate passage ids if retrieval is restricted to them, else None."""
        cands = rec.get("candidates")
        if self.opts.retrieval_scope == "corpus" or (self.opts.retrieval_scope == "auto"
                                                      and not cands):
            return None
        if not isinstance(cands, list) or not cands:
            raise DataError(f"record {rec.get('id')!r}: retrieval_scope 'candidates' needs a "
                            "non-empty 'candidates' list")
        return [c["id"] if isinstance(c, dict) else str(c) for c in cands]

    def can_retrieve(self, s: DecodeState) -> bool:
        cap = self.opts.max_retrievals
        return cap is None or len(s.ret_passages) < cap

    @torch.no_grad()
    def decode_records(self, model, records, batch, decoding) -> list[dict]:
        if self.index is None:
            raise RuntimeError("cosup: prepare_decoding must run before decoding")
        start = time.perf_counter()
        states = [DecodeState(row[m.bool()].tolist())
                  for row, m in zip(batch["input_ids"].cpu(), batch["attention_mask"].cpu(),
                                    strict=True)]
        cands = [self.record_candidates(r) for r in records]
        if self.opts.retrieve_first:
            for s in states:
                if self.can_retrieve(s):
                    s.extend([self.ret_id])
                    s.query = list(s.seq)
        max_new, max_total = decoding["max_new_tokens"], decoding.get("max_total_len")
        while True:
            pending = [i for i, s in enumerate(states) if s.query is not None]
            if pending:
                self.retrieve(model, [states[i] for i in pending], [cands[i] for i in pending],
                              max_total)
            for s in states:
                if not s.done and (len(s.output) >= max_new
                                   or (max_total and len(s.seq) >= max_total)):
                    self.finish(s)
            active = [s for s in states if not s.done]
            if not active:
                break
            groups: dict[tuple[bool, bool], list[DecodeState]] = {}
            for s in active:
                groups.setdefault((self.can_retrieve(s), s.span_open), []).append(s)
            for (can, span_open), group in groups.items():
                self.generate_round(model, group, can, span_open, max_new, max_total, decoding)
        secs = (time.perf_counter() - start) / max(1, len(states))
        tok = self.tokenizer
        out = []
        for s in states:
            raw = tok.decode(s.raw).strip()
            out.append({"hypothesis": tok.decode(s.output, skip_special_tokens=True).strip(),
                        "raw_output": raw, "retrieved": s.retrieved,
                        "spans": parse_spans(raw, s.ret_passages), "decode_seconds": secs})
        return out

    def finish(self, s: DecodeState) -> None:
        """Done: an open span is closed with a forced [Ce] (inference_utils.py 969-979)."""
        if s.span_open:
            s.extend([self.ce_id])
            s.span_open = False
        s.done = True

    def generate_round(self, model, group: list[DecodeState], can_retrieve: bool,
                       span_open: bool, max_new: int, max_total: int | None,
                       decoding: dict[str, Any]) -> None:
        """Continue each state until [Ret] (if allowed), [Ce] (inside a span), </s> or its
        budget; [Cs] is never generated (inference_utils.py 789-799)."""
        tok = self.tokenizer
        stop = ([tok.eos_token_id] + ([self.ret_id] if can_retrieve else [])
                + ([self.ce_id] if span_open else []))
        bad = [[self.cs_id]] + ([] if span_open else [[self.ce_id]]) + (
            [] if can_retrieve else [[self.ret_id]])
        budgets = [min(max_new - len(s.output), (max_total - len(s.seq)) if max_total
                       else max_new) for s in group]
        ids, mask = pad_batch([s.seq for s in group], tok.pad_token_id, left=True)
        dev = model.device
        # every setting from the config (greedy, or the official sampling), one beam: a
        # checkpoint's generation_config.json never applies (repro.decoding)
        cfg = generation_config({**decoding, "num_beams": 1,
                                 "max_new_tokens": max(budgets)}, tok, model.config,
                                eos_token_id=stop, bad_words_ids=bad)
        out = generate(model, cfg, input_ids=ids.to(dev), attention_mask=mask.to(dev))
        for s, row, budget in zip(group, out[:, ids.shape[1]:].tolist(), budgets, strict=True):
            new = row[:budget]
            end = next((j for j, t in enumerate(new) if t in stop), None)
            if end is None:  # budget used up
                s.extend(new)
                self.finish(s)
            elif new[end] == self.ret_id:
                s.extend(new[:end])
                s.query = s.seq + [self.ret_id]  # the query reads the sequence as generated
                if s.span_open:  # [Ce] forced before the new [Ret] (inference_utils.py 875-892)
                    s.extend([self.ce_id])
                    s.span_open = False
                s.extend([self.ret_id])
            elif new[end] == self.ce_id:
                s.extend(new[: end + 1])
                s.span_open = False
            else:  # </s>
                s.extend(new[:end])
                self.finish(s)

    def query_embeddings(self, model, seqs: list[list[int]]) -> torch.Tensor:
        """The last-layer state at the final [Ret] of each sequence: Gen's (projected if the
        run learned a map), or Embseq's for `separate`."""
        encoder = self.query_encoder if self.query_encoder is not None else model.base_model
        ids, mask = pad_batch(seqs, self.tokenizer.pad_token_id, left=True)
        dev = next(encoder.parameters()).device
        q = hidden_states(encoder, ids.to(dev), mask.to(dev))[:, -1].float()
        if self.projection is not None and self.query_encoder is None:
            q = self.projection.to(q.device)(q)
        if q.shape[1] != self.index.dim:
            raise DataError(f"query width {q.shape[1]} != index width {self.index.dim}: the "
                            "index was built with another Embseq than this run's")
        return F.normalize(q, dim=-1) if self.opts.normalize else q

    def retrieve(self, model, states: list[DecodeState], cands: list[list[str] | None],
                 max_total: int | None) -> None:
        """Top-1 passage of each waiting state, inserted after its [Ret] with a [Cs] (the
        passage is recorded but not inserted when it would not fit max_total, as official)."""
        q = self.query_embeddings(model, [s.query for s in states])
        results = self.index.search(q.cpu().numpy(), 1, cands)
        for s, res in zip(states, results, strict=True):
            s.query = None
            pid = res[0][0] if res else None
            s.ret_passages.append(pid)
            if pid is None:
                continue
            if pid not in self.passages:
                raise DataError(f"retrieved passage {pid!r} is not in the passages file given "
                                "for decoding")
            s.retrieved.append(pid)
            insert = self.insert_ids(self.passages[pid]) + [self.cs_id]
            if max_total and len(s.seq) + len(insert) >= max_total:
                s.done = True
                continue
            s.insert(insert)
            s.span_open = True


def _markup_chunks(text: str) -> list[str]:
    """The output split into markers ([Ret], [Cs], [Ce]) and the non-empty text between."""
    out: list[str] = []
    pos = 0
    for m in MARKUP.finditer(text):
        if m.start() > pos:
            out.append(text[pos: m.start()])
        out.append(m.group())
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out
