"""Semiparametric token-sequence co-supervision (arXiv 2403.09024).

Two decoder-only models, both initialised from the run's base model unless `embseq_path` says
otherwise: Gen (with LM head; its tokenizer gains `[NSP]`, `<p>`, `</p>`) and Embseq (the body
only; its tokenizer is the base one). A training instance is a prompt and an output with `[NSP]`
markers, each linked to a passage (repro.data.cosup_format); Gen reads

    prompt  [NSP] <p> passage </p>  answer </s>

  * NTP: next-token cross-entropy of Gen over the output tokens ([NSP], answer, </s>). The
    inserted `<p> passage </p>` is given, not generated, so it is masked by default
    (`mask_passage`); the official code's default (`loss_mask_context="no_mask"`) also
    trains on it: `mask_passage: false`.
  * NSP: query = Gen's last-layer hidden state at each `[NSP]` input position (through a learned
    linear map if Embseq is wider or narrower); sequence embedding = Embseq's last-layer state at
    the passage's last real token (`embed_position`, see repro.retrieval). InfoNCE (`nsp_loss`)
    over the batch's distinct passages, plus, under torch.distributed, the other ranks' passages
    gathered without gradient (`gather_negatives`). The loss value then equals the in-batch loss
    over the global batch; its gradient reaches the local passage embeddings only from local
    queries (stop-gradient negatives, as in the official code).
  * `supervision`: `ntp+nsp` = NTP + nsp_weight * NSP (both models train; NSP reaches Gen only
    through its hidden states, not its LM head); `nsp` = NSP alone; `ntp` = NTP alone, Embseq
    frozen at its initial checkpoint. Given by the option, else by the run's variant name when it
    is one of the three, else `ntp+nsp`.

Decoding (greedy; the official code samples with T=0.7, top-p=0.9): generate with Gen until
`[NSP]` or `</s>`; at `[NSP]` take its hidden state, retrieve the top-1 passage from the index
(whole corpus, or the record's `candidates`), insert `<p> passage </p>` and continue, at most
`max_retrievals` times per example (then `[NSP]` is banned). `<p>` and `</p>` are never
generated. Each round is one `model.generate` call (KV cache within a round; the sequence is
re-read after each insertion).

Output directory: model/ = Gen + tokenizer (+ query_projection.safetensors when the widths
differ, cosup.json = the options); model/embseq/ = Embseq + its tokenizer +
sequence_encoder.json (how passages are embedded; read by repro.retrieval).
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

from repro.batching import IGNORE, pad, prompt_text
from repro.config import ConfigError
from repro.data.cosup_format import NSP_TOKEN, instances_from_records
from repro.io import DataError, read_jsonl, write_json
from repro.methods.base import Method, options_from_dict
from repro.models import DECODER_ONLY, ENCODER_DECODER, load_base_model, load_tokenizer
from repro.retrieval import (
    POSITIONS,
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

SUPERVISIONS = ("ntp", "nsp", "ntp+nsp")
P_OPEN, P_CLOSE = "<p>", "</p>"
SPECIAL_TOKENS = (NSP_TOKEN, P_OPEN, P_CLOSE)
EMBSEQ_DIR = "embseq"
PROJECTION_FILE = "query_projection.safetensors"
SCOPES = ("auto", "corpus", "candidates")


@dataclass(frozen=True)
class CoSupOptions:
    supervision: str = "ntp+nsp"  # ntp | nsp | ntp+nsp (default: the run's variant name)
    nsp_weight: float = 0.01  # lambda; official np_weight=100
    temperature: float = 1.0  # InfoNCE temperature (official: 1)
    normalize: bool = False  # cosine instead of raw dot product (official: raw)
    embed_position: str = "last_token"  # last_token | official_pad
    embed_template: str = "{text}"  # what Embseq embeds (official distractor setting: text)
    insert_template: str = "{title} :: {text}"  # what is inserted into Gen's context
    max_passage_len: int = 128  # tokens, for Embseq and for the insertion
    mask_passage: bool = True  # no NTP on inserted passages (official: false, "no_mask")
    embseq_path: str | None = None  # Embseq checkpoint (default: the run's base model)
    gather_negatives: bool = True  # other ranks' passages as negatives under torch.distributed
    max_retrievals: int = 3  # per example at decoding
    retrieve_first: bool = False  # force [NSP] right after the prompt (official ret_first)
    retrieval_scope: str = "auto"  # auto (record candidates if any) | corpus | candidates

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> CoSupOptions:
        opts = options_from_dict(cls, options, "cosup", ConfigError)
        checks = [(opts.supervision in SUPERVISIONS, f"supervision must be one of {SUPERVISIONS}"),
                  (opts.embed_position in POSITIONS, f"embed_position must be one of {POSITIONS}"),
                  (opts.retrieval_scope in SCOPES, f"retrieval_scope must be one of {SCOPES}"),
                  (opts.temperature > 0, "temperature must be > 0"),
                  (opts.nsp_weight >= 0, "nsp_weight must be >= 0"),
                  (opts.max_passage_len >= 2, "max_passage_len must be >= 2"),
                  (opts.max_retrievals >= 0, "max_retrievals must be >= 0")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"cosup: {msg}, got {options}")
        return opts


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


class CoSupModel(nn.Module):
    """Gen + Embseq (+ query projection); forward returns the losses of one batch."""

    def __init__(self, gen, embseq, projection: nn.Linear | None, nsp_id: int,
                 opts: CoSupOptions) -> None:
        super().__init__()
        self.gen, self.embseq, self.projection = gen, embseq, projection
        self.nsp_id, self.opts = nsp_id, opts
        self.config = gen.config

    def queries(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states at the [NSP] positions (row-major), in Embseq's space."""
        q = hidden[input_ids == self.nsp_id]
        return self.projection(q) if self.projection is not None else q

    def sequences(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = hidden_states(self.embseq, input_ids, attention_mask)
        return sequence_embedding(h, attention_mask, self.opts.embed_position)

    def forward(self, input_ids, attention_mask, labels, passage_input_ids,
                passage_attention_mask, positives, passage_keys) -> dict[str, torch.Tensor]:
        sup = self.opts.supervision
        hidden = hidden_states(self.gen.base_model, input_ids, attention_mask)
        out: dict[str, torch.Tensor] = {}
        if sup in ("ntp", "ntp+nsp"):
            out["ntp_loss"] = ntp_loss(self.gen, hidden, labels)
        if sup in ("nsp", "ntp+nsp"):
            q = self.queries(hidden, input_ids)
            if q.shape[0] != positives.shape[0]:
                raise ValueError(f"{q.shape[0]} [NSP] positions but {positives.shape[0]} "
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
    """Right-padded Gen sequences, plus the batch's distinct linked passages for Embseq."""

    pad_id: int
    passage_pad_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([f["input_ids"] for f in features], self.pad_id)
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
        return {"input_ids": ids, "attention_mask": mask,
                "labels": pad([f["labels"] for f in features], IGNORE),
                "passage_input_ids": p_ids, "passage_attention_mask": p_mask,
                "positives": torch.tensor(positives, dtype=torch.long),
                "passage_keys": torch.tensor([passage_key(p) for p in slot], dtype=torch.long)}


@dataclass
class DecodeState:
    """One example during decoding: the full sequence, and what was generated / inserted."""

    seq: list[int]
    output: list[int] = field(default_factory=list)  # generated tokens, [NSP] included
    raw: list[int] = field(default_factory=list)  # generated and inserted tokens
    retrieved: list[str] = field(default_factory=list)
    wants_passage: bool = False
    done: bool = False

    def extend(self, toks: list[int]) -> None:
        self.seq += toks
        self.output += toks
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
        missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"extra_special_tokens": missing},
                                         replace_extra_special_tokens=False)
        self.nsp_id, self.open_id, self.close_id = tokenizer.convert_tokens_to_ids(
            list(SPECIAL_TOKENS))
        self.settings = EncoderSettings(self.opts.embed_position, self.opts.embed_template,
                                        self.opts.max_passage_len, self.opts.normalize)
        self.embseq_tokenizer = None
        self.model: CoSupModel | None = None
        self.index: PassageIndex | None = None
        self.passages: dict[str, dict] = {}
        self.projection: nn.Linear | None = None

    @classmethod
    def options_for_variant(cls, options: dict[str, Any], variant: str | None) -> dict[str, Any]:
        if "supervision" not in options and variant in SUPERVISIONS:
            return {**options, "supervision": variant}
        return options

    # --- training -------------------------------------------------------------------------

    def prepare_model(self, model, base_path: str) -> CoSupModel:
        """Gen (embeddings resized for the new tokens) + Embseq (+ projection) in one module."""
        src = self.opts.embseq_path or base_path
        embseq = (copy.deepcopy(model.base_model) if self.opts.embseq_path is None
                  else load_base_model(src))
        self.embseq_tokenizer = load_tokenizer(src, DECODER_ONLY)
        model.resize_token_embeddings(len(self.tokenizer))
        d_gen, d_emb = model.config.hidden_size, embseq.config.hidden_size
        projection = nn.Linear(d_gen, d_emb, bias=False) if d_gen != d_emb else None
        if self.opts.supervision == "ntp":  # Embseq (and the unused projection) stay as loaded
            embseq.requires_grad_(False)
            if projection is not None:
                projection.requires_grad_(False)
        self.model = CoSupModel(model, embseq, projection, self.nsp_id, self.opts)
        return self.model

    def insert_ids(self, passage: dict[str, Any]) -> list[int]:
        """`<p> passage </p>` as Gen token ids (the passage cut to max_passage_len tokens)."""
        text = passage_text(passage, self.opts.insert_template)
        toks = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True,
                              truncation=True, max_length=self.opts.max_passage_len)["input_ids"]
        return [self.open_id, *toks, self.close_id]

    def encode_instance(self, inst: dict[str, Any], passages: dict[str, dict],
                        training: dict[str, Any], cache: dict[str, tuple]) -> dict[str, Any]:
        """Token ids and NTP labels of one instance, with its linked passages' Embseq ids.

        max_target_len bounds the output tokens (inserted passages not counted); a marker cut
        off by it is dropped with its passage."""
        tok = self.tokenizer
        ids = tok(prompt_text(inst["source"], training["prompt_suffix"]), truncation=True,
                  max_length=training["max_source_len"], split_special_tokens=True)["input_ids"]
        labels = [IGNORE] * len(ids)
        budget = training["max_target_len"] - 1  # room for </s>
        evidence = []
        for j, piece in enumerate(inst["output"].split(NSP_TOKEN)):
            if j > 0:
                if budget < 1:
                    break
                pid = inst["evidence"][j - 1]
                if pid not in cache:
                    cache[pid] = (self.insert_ids(passages[pid]),
                                  passage_ids(self.embseq_tokenizer, passages[pid],
                                              self.settings))
                insert = cache[pid][0]
                ids += [self.nsp_id, *insert]
                labels += [self.nsp_id, *([IGNORE] * len(insert) if self.opts.mask_passage
                                          else insert)]
                budget -= 1
                evidence.append(pid)
            if piece.strip():
                toks = tok(piece.strip(), add_special_tokens=False,
                           split_special_tokens=True)["input_ids"][:budget]
                ids += toks
                labels += toks
                budget -= len(toks)
        ids.append(tok.eos_token_id)
        labels.append(tok.eos_token_id)
        return {"id": inst["id"], "input_ids": ids, "labels": labels, "evidence": evidence,
                "evidence_ids": [cache[p][1] for p in evidence]}

    def encode_split(self, path: Path, training: dict[str, Any]) -> list[dict]:
        """Instances of data_dir/{split}.jsonl linked to data_dir/passages.jsonl, encoded."""
        if self.embseq_tokenizer is None:
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
        return CoSupCollator(self.tokenizer.pad_token_id, self.embseq_tokenizer.pad_token_id)

    def loss(self, model, batch):
        out = model(**batch)
        sup = self.opts.supervision
        if sup == "ntp":
            loss = out["ntp_loss"]
        elif sup == "nsp":
            loss = out["nsp_loss"]
        else:
            loss = out["ntp_loss"] + self.opts.nsp_weight * out["nsp_loss"]
        return loss, {k: float(v.detach()) for k, v in out.items()}

    def save(self, trainer, out: Path) -> None:
        """model/ = Gen + tokenizer (+ projection, cosup.json); model/embseq/ = Embseq."""
        if not trainer.args.should_save:
            return
        cm = self.model
        out.mkdir(parents=True, exist_ok=True)
        cm.gen.save_pretrained(str(out))
        self.tokenizer.save_pretrained(str(out))
        write_json(out / "cosup.json", asdict(self.opts))
        emb_dir = out / EMBSEQ_DIR
        cm.embseq.save_pretrained(str(emb_dir))
        self.embseq_tokenizer.save_pretrained(str(emb_dir))
        self.settings.save(emb_dir)
        if cm.projection is not None:
            from safetensors.torch import save_file

            save_file({"weight": cm.projection.weight.detach().cpu().contiguous()},
                      str(out / PROJECTION_FILE))

    # --- decoding -------------------------------------------------------------------------

    def prepare_decoding(self, model_dir: Path, inputs: dict[str, Path]) -> None:
        """Load the index (inputs["index"]), the passages (inputs["passages"]) and the query
        projection saved beside Gen, if any."""
        for key in ("index", "passages"):
            if key not in inputs:
                raise ConfigError(f"cosup: decoding needs inputs[{key!r}] (index: a directory "
                                  "from repro.retrieval.merge_shards; passages: passages.jsonl)")
        self.index = PassageIndex.load(Path(inputs["index"]))
        self.passages = {p["id"]: p for p in read_passages(Path(inputs["passages"]))}
        proj = Path(model_dir) / PROJECTION_FILE
        if proj.is_file():
            from safetensors.torch import load_file

            weight = load_file(str(proj))["weight"]
            self.projection = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            self.projection.weight.data.copy_(weight)

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

    @torch.no_grad()
    def decode_records(self, model, records, batch, decoding) -> list[dict]:
        if self.index is None:
            raise RuntimeError("cosup: prepare_decoding must run before decoding")
        start = time.perf_counter()
        states = [DecodeState(row[m.bool()].tolist())
                  for row, m in zip(batch["input_ids"].cpu(), batch["attention_mask"].cpu(),
                                    strict=True)]
        cands = [self.record_candidates(r) for r in records]
        if self.opts.retrieve_first and self.opts.max_retrievals > 0:
            for s in states:
                s.extend([self.nsp_id])
                s.wants_passage = True
        max_new = decoding["max_new_tokens"]
        while True:
            pending = [i for i, s in enumerate(states) if s.wants_passage]
            if pending:
                self.retrieve(model, [states[i] for i in pending], [cands[i] for i in pending])
            for s in states:
                s.done = s.done or len(s.output) >= max_new
            active = [s for s in states if not s.done]
            if not active:
                break
            for can in (True, False):
                group = [s for s in active
                         if (len(s.retrieved) < self.opts.max_retrievals) == can]
                if group:
                    self.generate_round(model, group, can, max_new)
        secs = (time.perf_counter() - start) / max(1, len(states))
        tok = self.tokenizer
        return [{"hypothesis": tok.decode(s.output, skip_special_tokens=True).strip(),
                 "retrieved": s.retrieved, "raw_output": tok.decode(s.raw).strip(),
                 "decode_seconds": secs} for s in states]

    def generate_round(self, model, group: list[DecodeState], can_retrieve: bool,
                       max_new: int) -> None:
        """Greedy continuation of each state until [NSP] (if allowed), </s> or its budget."""
        tok = self.tokenizer
        stop = [tok.eos_token_id] + ([self.nsp_id] if can_retrieve else [])
        bad = [[self.open_id], [self.close_id]] + ([] if can_retrieve else [[self.nsp_id]])
        budgets = [max_new - len(s.output) for s in group]
        ids, mask = pad_batch([s.seq for s in group], tok.pad_token_id, left=True)
        dev = model.device
        out = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), do_sample=False,
                             num_beams=1, max_new_tokens=max(budgets), eos_token_id=stop,
                             pad_token_id=tok.pad_token_id, bad_words_ids=bad)
        for s, row, budget in zip(group, out[:, ids.shape[1]:].tolist(), budgets, strict=True):
            new = row[:budget]
            end = next((j for j, t in enumerate(new) if t in stop), None)
            if end is None:  # budget used up
                s.extend(new)
                s.done = True
            elif new[end] == self.nsp_id:
                s.extend(new[: end + 1])
                s.wants_passage = True
            else:  # </s>
                s.extend(new[:end])
                s.done = True

    def retrieve(self, model, states: list[DecodeState], cands: list[list[str] | None]) -> None:
        """Query = Gen's state at each trailing [NSP]; insert the top-1 passage after it."""
        ids, mask = pad_batch([s.seq for s in states], self.tokenizer.pad_token_id, left=True)
        dev = model.device
        q = hidden_states(model.base_model, ids.to(dev), mask.to(dev))[:, -1].float()
        if self.projection is not None:
            q = self.projection.to(q.device)(q)
        if q.shape[1] != self.index.dim:
            raise DataError(f"query width {q.shape[1]} != index width {self.index.dim}: the "
                            "index was built with another Embseq than this run's model/embseq")
        if self.opts.normalize:
            q = F.normalize(q, dim=-1)
        results = self.index.search(q.cpu().numpy(), 1, cands)
        for s, res in zip(states, results, strict=True):
            s.wants_passage = False
            if not res:
                continue
            pid = res[0][0]
            if pid not in self.passages:
                raise DataError(f"retrieved passage {pid!r} is not in the passages file given "
                                "for decoding")
            s.retrieved.append(pid)
            insert = self.insert_ids(self.passages[pid])
            s.seq += insert
            s.raw += insert
