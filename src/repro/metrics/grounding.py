"""Grounding (`metrics.grounding.kind: sentences`, ours): ALCE-style citation recall of the
output's sentences by the retrieved passages. The paper's span-level score is
repro.metrics.autoais (`kind: spans`).

For each example the output is split into sentences; each sentence is an NLI hypothesis whose
premise is the example's first `at_most_passages` distinct retrieved passages, each rendered
"Title: {title}\\n{text}" and joined by newlines (ALCE's AutoAIS with at most 3 citations; every
sentence cites all the passages retrieved for its example). A sentence scores 1 when the NLI
model's argmax label is entailment; an example scores the mean over its sentences, 0 when it
retrieved nothing; examples with no sentence are left out (as ALCE does). The metric is the
mean over examples, x100.

Any Hugging Face sequence-classification NLI checkpoint works: the entailment class is the one
whose `config.id2label` name starts with "entail". The model is read from a local directory or
the local HF cache only; when it is not there the metric is recorded as skipped with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from repro.metrics.strict import not_applicable

Entails = Callable[[list[str], list[str]], list[bool]]
"""(premises, hypotheses) -> entailed?, one per pair."""


@functools.lru_cache(maxsize=1)
def _sentence_splitter() -> tuple[Callable[[str], list[str]], str]:
    """NLTK's trained Punkt (what ALCE uses) when its data is installed, else untrained Punkt."""
    import nltk
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        nltk.data.find("tokenizers/punkt_tab")
        return nltk.sent_tokenize, "punkt"
    except LookupError:
        return PunktSentenceTokenizer().tokenize, "punkt-untrained"


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences of `text`."""
    split, _ = _sentence_splitter()
    return [s.strip() for s in split(text or "") if s.strip()]


def format_passage(passage: dict[str, Any]) -> str:
    return f"Title: {passage['title']}\n{passage['text']}"


def premise(passages: Sequence[dict[str, Any]], at_most: int) -> str:
    """The first `at_most` distinct passages (by id) as one premise."""
    kept: dict[str, dict[str, Any]] = {}
    for p in passages:
        if len(kept) == at_most:
            break
        kept.setdefault(p["id"], p)
    return "\n".join(format_passage(p) for p in kept.values())


def citation_recall(
    hypotheses: Sequence[str],
    retrieved: Sequence[Sequence[dict[str, Any]]],
    entails: Entails,
    at_most: int = 3,
    batch_size: int = 16,
) -> list[float | None]:
    """Per example: the share of its sentences entailed by its premise (None: no sentence)."""
    pairs: list[tuple[int, str, str]] = []  # (example, premise, sentence)
    scores: list[float | None] = []
    n_sents: list[int] = []
    for i, (hyp, passages) in enumerate(zip(hypotheses, retrieved, strict=True)):
        sents = split_sentences(hyp)
        n_sents.append(len(sents))
        scores.append(None if not sents else 0.0)
        if sents and passages:
            prem = premise(passages, at_most)
            pairs += [(i, prem, s) for s in sents]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        verdicts = entails([p for _, p, _ in chunk], [s for _, _, s in chunk])
        if len(verdicts) != len(chunk):
            raise RuntimeError(f"NLI returned {len(verdicts)} verdicts for {len(chunk)} pairs")
        for (i, _, _), ok in zip(chunk, verdicts, strict=True):
            scores[i] = (scores[i] or 0.0) + float(ok) / n_sents[i]
    return scores


def entailment_index(id2label: dict[Any, str]) -> int | None:
    """Index of the label whose name starts with "entail" (case-insensitive), else None."""
    hits = [int(i) for i, name in id2label.items() if str(name).lower().startswith("entail")]
    return hits[0] if len(hits) == 1 else None


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).exists()


@functools.lru_cache(maxsize=2)
def load_nli(name: str, max_length: int = 512, device: str | None = None) -> Entails:
    """An `Entails` function of a local or cached HF sequence-classification NLI model.

    Raises OSError when the model cannot be read and ValueError when it has no single
    entailment label.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from repro.device import device as default_device

    src = str(Path(name).expanduser()) if _looks_like_path(name) else name
    tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(src, local_files_only=True)
    idx = entailment_index(dict(model.config.id2label))
    if idx is None:
        raise ValueError(f"no single entailment label in id2label {model.config.id2label}")
    dev = torch.device(device) if device else default_device()
    model.to(dev).eval()

    def entails(premises: list[str], hypotheses: list[str]) -> list[bool]:
        enc = tokenizer(premises, hypotheses, truncation=True, max_length=max_length,
                        padding=True, return_tensors="pt").to(dev)
        with torch.no_grad():
            logits = model(**enc).logits
        return [bool(x) for x in (logits.argmax(-1) == idx).tolist()]

    return entails


def _skip(reason: str) -> tuple[dict[str, Any], list[float | None]]:
    return {"skipped": reason}, []


def grounding(
    hypotheses: Sequence[str],
    retrieved: Sequence[Sequence[dict[str, Any]]] | None,
    cfg: dict[str, Any],
) -> tuple[dict[str, Any], list[float | None]]:
    """(metrics.json entry, per-example scores 0..1) of citation recall, or skipped with why.

    cfg (metrics.grounding): model (local dir or hub id; null = skipped), at_most_passages (3),
    batch_size (16), max_length (512), device (default: CUDA when present).
    """
    name = cfg.get("model")
    if not name:
        return _skip("no NLI model configured (set metrics.grounding.model)")
    if retrieved is None:
        return not_applicable("predictions have no 'retrieved' passages (run without "
                              "retrieval)"), []
    if _looks_like_path(str(name)) and not Path(str(name)).expanduser().is_dir():
        return _skip(f"NLI model path not found: {name}")
    max_length = int(cfg.get("max_length", 512))
    try:
        entails = load_nli(str(name), max_length, cfg.get("device"))
    except (OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return _skip(f"cannot use NLI model {name}: {first}")
    at_most = int(cfg.get("at_most_passages", 3))
    scores = citation_recall(hypotheses, retrieved, entails, at_most,
                             int(cfg.get("batch_size", 16)))
    kept = [s for s in scores if s is not None]
    if not kept:
        return {"skipped": "no output has a sentence to check"}, scores
    _, splitter = _sentence_splitter()
    entry = {
        "value": 100.0 * sum(kept) / len(kept),
        "signature": f"citation-recall|nli={name}|premise=top{at_most}-retrieved"
                     f"|sentences={splitter}|max_len={max_length}",
        "n": len(kept),
        "no_sentence": len(scores) - len(kept),
    }
    return entry, scores
