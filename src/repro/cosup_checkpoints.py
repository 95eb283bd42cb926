"""A co-supervision model as a (Gen, Embseq) pair of checkpoints, local directories or hub ids:
a run's trained models, or existing ones such as the released
kaist-ai/cosupervision-{gen,emb_seq}-Llama2_7b (a run with the cosup option `checkpoints`).

Layout, as the official code saves and loads it (utils/convert_utils.py 120-146,
run_inference_ntp_nsp.py 400-439, run_inference_ntp.py 539-618): Gen is a causal LM with its
embeddings resized to the tokenizer with the special tokens (Llama-2: 32,004 rows); Embseq is a
decoder body loaded without an LM head (its checkpoint may hold one: it is dropped). The
official inference loads the tokenizer from the base model (meta-llama/Llama-2-7b-hf) and adds
`<PAD>`, `[Cs]`, `[Ce]`, `[Ret]` to it: here the tokenizer comes from Gen's directory when it
has one, else from `tokenizer`, and the official tokens are added (repro.cosup_markup).

Checks, each a ConfigError naming the checkpoints: Gen's embeddings hold every token id of the
tokenizer; where both checkpoints ship a tokenizer, they give the special tokens the same ids
(and an Embseq that reads Gen's sequences, as in `separate`, has them all).
"""

from __future__ import annotations

import logging
from pathlib import Path

from repro.cosup_markup import SPECIAL_TOKENS, add_official_tokens, special_ids
from repro.errors import ConfigError
from repro.models import DECODER_ONLY, load_tokenizer

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def is_local(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~")) or Path(ref).exists()


def own_tokenizer(ref: str):
    """The tokenizer saved with a checkpoint (local directory or hub id in the cache), else
    None."""
    if is_local(ref):
        if not any((Path(ref).expanduser() / f).is_file() for f in TOKENIZER_FILES):
            return None
        return load_tokenizer(str(Path(ref).expanduser()), DECODER_ONLY)
    try:
        return load_tokenizer(ref, DECODER_ONLY)
    except (OSError, ValueError):
        return None


def pair_tokenizer(gen: str, fallback: str | None = None):
    """Gen's tokenizer (its own, else `fallback`'s) with the official special tokens."""
    tok = own_tokenizer(gen)
    source = gen
    if tok is None:
        if not fallback:
            raise ConfigError(f"checkpoint {gen}: no tokenizer beside the model; give the "
                              "cosup option checkpoints.tokenizer (the official inference "
                              "uses meta-llama/Llama-2-7b-hf's)")
        tok = own_tokenizer(fallback)
        source = fallback
        if tok is None:
            raise ConfigError(f"checkpoints.tokenizer {fallback}: no tokenizer there (download "
                              "it first: scripts/predownload.py)")
    added = add_official_tokens(tok)
    if added:
        log.info("tokenizer from %s: added %s", source, added)
    return tok


def check_rows(model, tokenizer, ref: str, what: str) -> None:
    """Every id of the tokenizer has an embedding row in the model."""
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise ConfigError(f"{what} checkpoint {ref}: {rows} embedding rows but the tokenizer "
                          f"has {len(tokenizer)} tokens (ids of {special_ids(tokenizer)}): "
                          "not a checkpoint trained with these special tokens")


def check_pair_tokenizers(gen_tok, gen: str, embseq: str, reads_gen_sequences: bool) -> None:
    """Embseq's own tokenizer (if it ships one) agrees with Gen's on the special tokens; an
    Embseq that reads Gen's sequences must have them all."""
    emb_tok = own_tokenizer(embseq)
    if emb_tok is None:
        return
    ours, theirs = special_ids(gen_tok), special_ids(emb_tok)
    clash = {t: (ours[t], theirs[t]) for t in ours.keys() & theirs.keys() if ours[t] != theirs[t]}
    missing = [t for t in SPECIAL_TOKENS if t not in theirs] if reads_gen_sequences else []
    if clash or missing:
        detail = ", ".join(f"{t}: {a} in Gen, {b} in Embseq" for t, (a, b) in clash.items())
        if missing:
            detail += (", " if detail else "") + f"{missing} missing from Embseq's tokenizer"
        raise ConfigError(f"checkpoints {gen} (Gen) and {embseq} (Embseq): their tokenizers "
                          f"disagree on the special tokens ({detail})")
