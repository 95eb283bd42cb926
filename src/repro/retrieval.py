"""The nonparametric sequence space of co-supervision: Embseq embeddings of passages in a faiss
index.

Sequence embedding: Embseq's last-layer hidden state at one position of the passage, which is
tokenized as `<bos> text </s>` (`eos`; the official code's Llama tokenizer adds `<bos>` only):
  * `last_token` (default): the last real (non-pad) token, i.e. `</s>`, under left or right
    padding; position ids follow the attention mask, so the embedding does not depend on the
    batch it is computed in;
  * `official_pad`: the last position of the right-padded batch, as the official code does
    (for passages shorter than the longest one of their batch this is a pad position).

Index build in shards (each can run as its own job): `embed_shard` writes rows
[k*N/K, (k+1)*N/K) of passages.jsonl to `<prefix>.npy` + `<prefix>.ids.json`; `merge_shards`
concatenates them in shard order into an index directory:
  embeddings.npy  float32 [N, d]      ids.json  passage ids in row order
  index.faiss     flat | ivf | hnsw, inner product      meta.json  kind, dim, n, parameters
`PassageIndex.search` answers top-k over the whole index, or exactly over per-query candidate
lists (the official evaluation restricts each question to its own candidates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.batching import pad
from repro.io import DataError, read_json, read_jsonl, write_json

POSITIONS = ("last_token", "official_pad")
INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq", "sq8", "fp16")
ENCODER_SETTINGS = "sequence_encoder.json"  # in the Embseq directory: how passages are embedded


@dataclass(frozen=True)
class EncoderSettings:
    """How Embseq turns a passage into its token ids and picks the embedding position."""

    position: str = "last_token"
    template: str = "{text}"  # official distractor setting embeds the text only
    max_len: int = 128
    normalize: bool = False  # unit-length vectors (cosine scores)
    eos: bool = True  # end each passage with </s>

    def save(self, directory: Path) -> None:
        write_json(directory / ENCODER_SETTINGS, self.__dict__)

    @classmethod
    def load(cls, directory: Path) -> EncoderSettings:
        path = directory / ENCODER_SETTINGS
        if not path.is_file():
            raise DataError(f"{path}: missing (an Embseq directory saved by the cosup method "
                            "holds it)")
        return cls(**read_json(path))


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over attended tokens only, so left padding does not shift them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def hidden_states(encoder, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last-layer (post final norm) hidden states [B, T, d] of a decoder-only base model."""
    out = encoder(input_ids=input_ids, attention_mask=attention_mask,
                  position_ids=position_ids(attention_mask), use_cache=False)
    return out.last_hidden_state


def sequence_embedding(hidden: torch.Tensor, attention_mask: torch.Tensor,
                       position: str = "last_token") -> torch.Tensor:
    """One vector per row of hidden [B, T, d]: at the last attended token, or (official_pad)
    at the last position of the batch whatever it holds."""
    if position == "official_pad":
        return hidden[:, -1]
    if position != "last_token":
        raise ValueError(f"embed_position must be one of {POSITIONS}, got {position!r}")
    t = hidden.shape[1]
    idx = torch.arange(t, device=attention_mask.device).expand_as(attention_mask)
    last = torch.where(attention_mask.bool(), idx, -1).max(-1).values
    if (last < 0).any():
        raise ValueError("sequence_embedding: a row has no attended token")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def passage_text(passage: dict[str, Any], template: str) -> str:
    """The passage rendered with `template` ({title}, {text}); the text alone if untitled."""
    if not passage.get("title"):
        return passage["text"]
    return template.format(title=passage["title"], text=passage["text"])


def passage_ids(tokenizer, passage: dict[str, Any], settings: EncoderSettings) -> list[int]:
    """Embseq input ids of one passage: `<bos> text </s>` (without `</s>` unless settings.eos)
    within settings.max_len tokens."""
    ids = tokenizer(passage_text(passage, settings.template), truncation=True,
                    max_length=settings.max_len - int(settings.eos),
                    split_special_tokens=True)["input_ids"]
    return ids + [tokenizer.eos_token_id] if settings.eos else ids


def pad_batch(rows: list[list[int]], pad_id: int,
              left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids and attention mask of token rows."""
    return pad(rows, pad_id, left=left), pad([[1] * len(r) for r in rows], 0, left=left)


@torch.no_grad()
def embed_passages(encoder, tokenizer, passages: Sequence[dict[str, Any]],
                   settings: EncoderSettings, batch_size: int = 32) -> np.ndarray:
    """float32 [N, d] embeddings of passages in their order.

    With `last_token`, passages are batched by length (less padding, same vectors); with
    `official_pad` they are batched in file order, as the official code does.
    """
    rows = [passage_ids(tokenizer, p, settings) for p in passages]
    order = list(range(len(rows)))
    if settings.position == "last_token":
        order.sort(key=lambda i: len(rows[i]))
    dev = next(encoder.parameters()).device
    out = np.zeros((len(rows), encoder.config.hidden_size), dtype=np.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([rows[i] for i in idx], pad_id)
        h = hidden_states(encoder, ids.to(dev), mask.to(dev))
        emb = sequence_embedding(h, mask.to(dev), settings.position).float()
        if settings.normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        out[idx] = emb.cpu().numpy()
    return out


def load_encoder(encoder: str | Path | dict[str, Any]):
    """(Embseq base model in eval mode, its tokenizer, its EncoderSettings).

    `encoder`: a directory saved by the cosup method (settings in sequence_encoder.json), or a
    spec {"embseq": directory or hub id, "settings": EncoderSettings fields or None (then read
    from the directory), "gen", "tokenizer", "reads_gen_sequences"} of a (Gen, Embseq) pair
    (repro.cosup_checkpoints: the tokenizer is Embseq's own, else Gen's, checked to agree)."""
    from repro.device import device
    from repro.models import DECODER_ONLY, load_base_model, load_tokenizer

    spec = encoder if isinstance(encoder, dict) else {"embseq": str(encoder)}
    ref = str(spec["embseq"])
    settings = (EncoderSettings(**spec["settings"]) if spec.get("settings")
                else EncoderSettings.load(Path(ref)))
    if spec.get("gen"):
        from repro.cosup_checkpoints import check_pair_tokenizers, own_tokenizer, pair_tokenizer

        gen_tok = pair_tokenizer(spec["gen"], spec.get("tokenizer"))
        check_pair_tokenizers(gen_tok, spec["gen"], ref, bool(spec.get("reads_gen_sequences")))
        own = own_tokenizer(ref)
        tokenizer = own if own is not None else gen_tok
    else:
        tokenizer = load_tokenizer(ref, DECODER_ONLY)
    model = load_base_model(ref).to(device()).eval()
    return model, tokenizer, settings


def shard_range(n: int, shard: int, n_shards: int) -> range:
    """Rows of shard `shard` (0-based) of `n_shards` contiguous shards of n rows."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard must be in 0..{n_shards - 1}, got {shard}")
    return range(shard * n // n_shards, (shard + 1) * n // n_shards)


def read_passages(path: Path) -> list[dict[str, Any]]:
    """passages.jsonl records, each checked to have str id/title/text."""
    from repro.data.schema import check_passage

    passages = read_jsonl(path)
    for i, p in enumerate(passages, start=1):
        reason = check_passage(p)
        if reason:
            raise DataError(f"{path}, passage {i}: {reason}")
    if not passages:
        raise DataError(f"{path}: no passages to index; give the dataset a corpus "
                        "(source.passages, or per-question candidates) or take another "
                        "dataset's index (datasets.<name>.index.from)")
    return passages


def embed_shard(encoder: Path | dict[str, Any], passages_path: Path, shard: int,
                n_shards: int, out_prefix: Path, batch_size: int = 32) -> dict[str, Any]:
    """Embed shard k of K of passages.jsonl to `<prefix>.npy` and `<prefix>.ids.json` with the
    Embseq of `encoder` (see load_encoder)."""
    passages = read_passages(passages_path)
    part = [passages[i] for i in shard_range(len(passages), shard, n_shards)]
    model, tokenizer, settings = load_encoder(encoder)
    vectors = embed_passages(model, tokenizer, part, settings, batch_size)
    save_vectors(out_prefix, vectors, [p["id"] for p in part])
    return {"shard": shard, "n_shards": n_shards, "n": len(part)}


def shard_files(prefix: Path) -> tuple[Path, Path]:
    """(`<prefix>.npy`, `<prefix>.ids.json`) of one embedded shard."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".npy"), prefix.with_name(prefix.name + ".ids.json")


def save_vectors(prefix: Path, vectors: np.ndarray, ids: list[str]) -> None:
    npy, ids_path = shard_files(prefix)
    npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy, vectors.astype(np.float32))
    write_json(ids_path, ids)


def load_vectors(prefix: Path) -> tuple[np.ndarray, list[str]]:
    npy, ids_path = shard_files(prefix)
    if not npy.is_file() or not ids_path.is_file():
        raise DataError(f"{npy} / {ids_path}: shard files missing (made by embed_shard)")
    vectors, ids = np.load(npy), read_json(ids_path)
    if len(ids) != vectors.shape[0]:
        raise DataError(f"{ids_path}: {len(ids)} ids for {vectors.shape[0]} rows in {npy}")
    return vectors, ids


def training_sample(x: np.ndarray, train_size: int | None, seed: int = 0) -> np.ndarray:
    """At most train_size rows of x drawn without replacement (all rows if None or more)."""
    if train_size is None or train_size >= len(x):
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), train_size, replace=False))
    return np.ascontiguousarray(x[rows])


def build_index(vectors: np.ndarray, kind: str = "flat", nlist: int | None = None,
                nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 128,
                ef_construction: int = 80, pq_m: int | None = None, pq_bits: int = 8,
                train_size: int | None = None):
    """A faiss inner-product index over vectors: exact (flat), IVF or HNSW, or compressed for
    a whole corpus: IVF-PQ (pq_m sub-quantizers of pq_bits bits; default d/8 at 8 bits, so
    d/8 bytes a vector instead of 4d), 8-bit or fp16 scalar quantization (d or 2d bytes).
    Trained indexes learn from `train_size` random rows (all rows if None)."""
    import faiss

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind in ("ivf", "ivfpq"):
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        if kind == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, ip)
        else:
            pq_m = pq_m or max(1, d // 8)
            if d % pq_m:
                raise ValueError(f"index params: pq_m {pq_m} must divide the dimension {d}")
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, pq_m, pq_bits, ip)
        index.train(training_sample(x, train_size))
        index.nprobe = min(nprobe, nlist)
    elif kind in ("sq8", "fp16"):
        qtype = faiss.ScalarQuantizer.QT_8bit if kind == "sq8" else faiss.ScalarQuantizer.QT_fp16
        index = faiss.IndexScalarQuantizer(d, qtype, ip)
        index.train(training_sample(x, train_size))
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
    index.add(x)
    return index


def set_search_params(index, nprobe: int | None = None, ef_search: int | None = None) -> None:
    """Search-time settings of a faiss index: nprobe (IVF kinds, capped at nlist), efSearch
    (HNSW); ignored by kinds without them."""
    import faiss

    if nprobe is not None and hasattr(index, "nprobe"):
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = min(int(nprobe), ivf.nlist)
    if ef_search is not None and hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(ef_search)


def merge_shards(prefixes: Sequence[Path], out_dir: Path, kind: str = "flat",
                 **params: Any) -> dict[str, Any]:
    """Concatenate shard vectors (in the given order) and write the index directory."""
    import faiss

    parts = [load_vectors(p) for p in prefixes]
    if not parts:
        raise ValueError("merge_shards: no shards")
    vectors = np.concatenate([v for v, _ in parts])
    ids = [i for _, shard_ids in parts for i in shard_ids]
    if len(set(ids)) != len(ids):
        raise DataError(f"merge_shards: duplicate passage ids across shards {list(prefixes)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = build_index(vectors, kind, **params)
    np.save(out_dir / "embeddings.npy", vectors)
    write_json(out_dir / "ids.json", ids)
    faiss.write_index(index, str(out_dir / "index.faiss"))
    meta = {"kind": kind, "dim": int(vectors.shape[1]), "n": len(ids), "params": params}
    write_json(out_dir / "meta.json", meta)
    return meta


class PassageIndex:
    """Search of an index directory: whole corpus (faiss) or per-query candidate lists (exact)."""

    def __init__(self, vectors: np.ndarray, ids: list[str], index) -> None:
        self.vectors, self.ids, self.index = vectors, ids, index
        self.row = {pid: i for i, pid in enumerate(ids)}

    @classmethod
    def load(cls, directory: Path, search: dict[str, Any] | None = None) -> PassageIndex:
        """The index of `directory`, with the search settings `search` (nprobe, ef_search)
        applied when given (else those it was built with)."""
        import faiss

        directory = Path(directory)
        for name in ("embeddings.npy", "ids.json", "index.faiss"):
            if not (directory / name).is_file():
                raise DataError(f"{directory / name}: missing from the index directory "
                                "(build it with repro.retrieval.merge_shards)")
        index = faiss.read_index(str(directory / "index.faiss"))
        set_search_params(index, **(search or {}))
        return cls(np.load(directory / "embeddings.npy", mmap_mode="r"),
                   json.loads((directory / "ids.json").read_text(encoding="utf-8")), index)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int = 1,
               candidates: Sequence[Sequence[str] | None] | None = None
               ) -> list[list[tuple[str, float]]]:
        """Top-k (passage id, inner product) per query row, best first."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got {list(q.shape)}")
        results: list[list[tuple[str, float]] | None] = [None] * len(q)
        free = [i for i in range(len(q)) if candidates is None or candidates[i] is None]
        if free:
            scores, rows = self.index.search(q[free], k)
            for i, s, r in zip(free, scores, rows, strict=True):
                results[i] = [(self.ids[j], float(v)) for v, j in zip(s, r, strict=True)
                              if j >= 0]
        for i in set(range(len(q))) - set(free):
            results[i] = self.search_candidates(q[i], candidates[i], k)
        return results  # type: ignore[return-value]

    def search_candidates(self, query: np.ndarray, cands: Sequence[str],
                          k: int) -> list[tuple[str, float]]:
        """Exact top-k among the candidate ids (ties keep candidate order)."""
        missing = [c for c in cands if c not in self.row]
        if missing:
            raise DataError(f"candidate passages not in the index: {missing[:3]}")
        if not cands:
            return []
        scores = np.asarray(self.vectors[[self.row[c] for c in cands]]) @ query
        top = np.argsort(-scores, kind="stable")[:k]
        return [(cands[j], float(scores[j])) for j in top]
