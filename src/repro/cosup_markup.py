"""The markup of co-supervision sequences, as the official code writes them (one copy here).

A generated sequence reads `... [Ret] title :: text [Cs] span [Ce] ...`: `[Ret]` is the
retrieval token (the paper's "[NSP]": Gen's hidden state there is the query), the retrieved
passage is inserted after it and closed by `[Cs]`, and the statement grounded in that passage
runs from `[Cs]` to `[Ce]`.

Names, verbatim from kaistAI/Semiparametric_Token-Sequence_Co-Supervision at 10e39b0,
run_train.py lines 81-85 (also run_train_genonly.py 84-88, run_inference_ntp_nsp.py 405-410):

    train_tokenizer.add_special_tokens(dict(pad_token="<PAD>"))
    train_tokenizer.add_special_tokens({"additional_special_tokens": ["[Cs]", "[Ce]"]})
    train_tokenizer.add_special_tokens({"additional_special_tokens": ["[Ret]"]})

so with the Llama-2 tokenizer (32,000 entries) `<PAD>` = 32000, `[Cs]` = 32001, `[Ce]` = 32002,
`[Ret]` = 32003: `add_official_tokens` adds them in that order, which is what makes the
released checkpoints' embedding rows line up with our tokenizer.

`parse_spans` reads `[Cs] ... [Ce]` spans out of a raw output the way the official post-
processing does (run_inference_ntp_nsp.py 299-330, eval_metric.py 686-717): each `[Ret]` is
paired with the first `[Cs]` after it and the first `[Ce]` after that `[Cs]`, a `[Ret]` that
falls inside the previous pair is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

RET = "[Ret]"  # retrieval token (the paper's [NSP])
CITE_START = "[Cs]"  # opens the span grounded in the passage just inserted
CITE_END = "[Ce]"  # closes it
PAD = "<PAD>"  # the official pad token (Llama-2 has none)
SPECIAL_TOKENS = (CITE_START, CITE_END, RET)  # in the official order of addition
MARKUP = re.compile(r"\[Ret\]|\[Cs\]|\[Ce\]")


def add_official_tokens(tokenizer) -> list[str]:
    """Add `<PAD>` (when the tokenizer has no pad token of its own), then `[Cs]`, `[Ce]`, then
    `[Ret]`, as the official code does; tokens already present are kept. Returns those added."""
    added: list[str] = []
    vocab = tokenizer.get_vocab()
    own_pad = tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token
    if PAD not in vocab and not own_pad:
        tokenizer.add_special_tokens({"pad_token": PAD})
        added.append(PAD)
    for group in ((CITE_START, CITE_END), (RET,)):
        missing = [t for t in group if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_special_tokens({"extra_special_tokens": missing},
                                         replace_extra_special_tokens=False)
            added += missing
    return added


def special_ids(tokenizer) -> dict[str, int]:
    """Ids of `[Ret]`, `[Cs]`, `[Ce]` that the tokenizer has (absent ones left out)."""
    vocab = tokenizer.get_vocab()
    return {t: vocab[t] for t in SPECIAL_TOKENS if t in vocab}


def strip_markup(text: str) -> str:
    """The text without `[Ret]`, `[Cs]`, `[Ce]` (spaces around a removed marker collapse)."""
    return re.sub(r"\s{2,}", " ", MARKUP.sub(" ", text)).strip()


def cite_triples(text: str) -> list[tuple[int, int, int, int]]:
    """(index of the [Ret] among all [Ret]s, and the string positions of that [Ret], its [Cs]
    and its [Ce]) for each span the official post-processing pairs up."""
    rets = [m.start() for m in re.finditer(re.escape(RET), text)]
    starts = [m.start() for m in re.finditer(re.escape(CITE_START), text)]
    ends = [m.start() for m in re.finditer(re.escape(CITE_END), text)]
    if not (rets and starts and ends):
        return []
    out: list[tuple[int, int, int, int]] = []
    cs = ce = 0
    for k, ret in enumerate(rets):
        if out and (ret < out[-1][2] or ret < out[-1][3]):
            continue
        while cs < len(starts) - 1 and ret >= starts[cs]:
            cs += 1
        if ret >= starts[cs]:
            continue
        while ce < len(ends) - 1 and starts[cs] >= ends[ce]:
            ce += 1
        if starts[cs] >= ends[ce]:
            continue
        out.append((k, ret, starts[cs], ends[ce]))
    return out


def parse_spans(raw_output: str, ret_passages: Sequence[str | None]) -> list[dict[str, Any]]:
    """`{"text", "passage_id"}` per `[Cs] ... [Ce]` span of a raw output, in order.

    `ret_passages[k]` is the id of the passage retrieved at the k-th `[Ret]` of raw_output
    (None where nothing was retrieved); `text` is the span without markers, stripped as the
    official code strips it."""
    spans = []
    for k, _, cs, ce in cite_triples(raw_output):
        pid = ret_passages[k] if k < len(ret_passages) else None
        if pid is None:
            continue
        spans.append({"text": raw_output[cs + len(CITE_START): ce].strip(), "passage_id": pid})
    return spans
