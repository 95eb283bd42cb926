"""Contriever as a first-stage retriever, through transformers: a BertModel whose embedding of a
text is the mean of its last hidden states over the attended tokens.

As in facebookresearch/contriever (checked at commit 39fb220):
- pooling: src/contriever.py lines 45-49, `last_hidden.masked_fill(~mask, 0).sum(1) /
  mask.sum(1)`; no normalisation (`normalize=False`), scores are inner products;
- passages: `title + " " + text` (generate_passage_embeddings.py line 36; `--no_title` gives
  the text alone), queries: the question as is (passage_retrieval.py lines 37-42);
  lowercasing and Contriever's `normalize_text` are off unless asked for (both scripts' flags
  default off, and Self-RAG's README runs them without); our `lowercase` option is the
  former, the latter is not offered;
- tokenization: padding to the batch's longest, truncation at 512 tokens (`passage_maxlength`,
  `question_maxlength` defaults);
- precision: the model in fp16 on the GPU unless `--no_fp16` (generate_passage_embeddings.py
  lines 75-76); `precision: auto` does the same on CUDA and runs fp32 on the CPU.
Passages are batched by length (less padding); with the attention mask the vectors do not
depend on the batch beyond float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PRECISIONS = ("auto", "fp32", "fp16")


@dataclass(frozen=True)
class RetrieverSettings:
    """How texts become Contriever inputs (`pools.<p>.retriever`)."""

    path: str = "facebook/contriever-msmarco"
    revision: str | None = None
    max_len: int = 512
    title: bool = True
    lowercase: bool = False
    precision: str = "auto"
    batch_size: int = 512  # passages per forward pass (Contriever: per_gpu_batch_size 512)
    query_batch_size: int = 64  # passage_retrieval.py's per_gpu_batch_size

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RetrieverSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"pools.<p>.retriever: unknown keys {unknown} (known: "
                             f"{sorted(known)})")
        s = cls(**d)
        if s.precision not in PRECISIONS:
            raise ValueError(f"pools.<p>.retriever.precision must be one of {PRECISIONS}")
        return s


def passage_text(p: dict[str, Any], s: RetrieverSettings) -> str:
    """A passage as Contriever encodes it: `title text` (or the text alone)."""
    text = f"{p['title']} {p['text']}" if s.title and p.get("title") is not None else p["text"]
    return text.lower() if s.lowercase else text


def query_text(q: str, s: RetrieverSettings) -> str:
    return q.lower() if s.lowercase else q


def mean_pool(last_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states [B, T, d] over the attended positions of mask [B, T]."""
    h = last_hidden.masked_fill(~mask[..., None].bool(), 0.0)
    return h.sum(dim=1) / mask.sum(dim=1)[..., None]


def load_retriever(s: RetrieverSettings):
    """(model in eval mode on the job's device, tokenizer) from a local directory or hub id."""
    from transformers import AutoModel, AutoTokenizer

    from repro.device import device

    tok = AutoTokenizer.from_pretrained(s.path, revision=s.revision)
    model = AutoModel.from_pretrained(s.path, revision=s.revision, add_pooling_layer=False)
    dev = device()
    if s.precision == "fp16" or (s.precision == "auto" and dev.type == "cuda"):
        model = model.half()
    return model.to(dev).eval(), tok


@torch.no_grad()
def encode(model, tokenizer, texts: Sequence[str], max_len: int = 512,
           batch_size: int = 64) -> np.ndarray:
    """Embeddings [n, d] of texts in their order (batched by token length), in the dtype the
    model computes in (float16 or float32)."""
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=max_len)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    dev = next(model.parameters()).device
    dtype = np.float16 if next(model.parameters()).dtype == torch.float16 else np.float32
    out = np.zeros((len(texts), model.config.hidden_size), dtype=dtype)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=max_len, return_tensors="pt").to(dev)
        hidden = model(**batch).last_hidden_state
        out[idx] = mean_pool(hidden, batch["attention_mask"]).cpu().numpy()
    return out
