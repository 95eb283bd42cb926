"""The TRUE NLI model (`google/t5_xxl_true_nli_mixture`, or any local seq2seq checkpoint) as a
batched judge: premise entails hypothesis?

As the co-supervision evaluation runs it (kaistAI/Semiparametric_Token-Sequence_Co-Supervision
@ 10e39b0, eval_metric.py 551-563; the same as princeton-nlp/ALCE eval.py 267-279 except the
truncation): input "premise: {premise} hypothesis: {hypothesis}", truncated to 1,024 tokens,
greedy generation of at most 10 new tokens, the decoded answer (special tokens skipped) "1"
means entailed. The model is loaded in bf16 on a GPU (eval_metric.py 570-576). The official code
reads any answer other than "1" as 0; here an answer that is neither "0" nor "1" is an error
naming the example, since it means the checkpoint is not a TRUE model.

Batching pads the inputs of several pairs (attention-masked), which leaves each judgement as it
is one by one; pairs are grouped by length to pad little.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TEMPLATE = "premise: {} hypothesis: {}"  # eval_metric.py 557
DEFAULTS = {"max_length": 1024, "max_new_tokens": 10, "batch_size": 8, "dtype": "auto"}
DTYPES = ("auto", "bfloat16", "float32")


class TrueOutputError(RuntimeError):
    """The NLI model answered neither "0" nor "1"."""


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).exists()


def nli_input(premise: str, hypothesis: str) -> str:
    return TEMPLATE.format(premise, hypothesis)


class TrueNLI:
    """A loaded seq2seq NLI checkpoint; `judge` runs it on batches of pairs."""

    def __init__(self, name: str, model: Any, tokenizer: Any, max_length: int,
                 max_new_tokens: int) -> None:
        self.name, self.model, self.tokenizer = name, model, tokenizer
        self.max_length, self.max_new_tokens = max_length, max_new_tokens

    def answers(self, texts: list[str]) -> list[str]:
        """The decoded answers of one padded batch of inputs."""
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", max_length=self.max_length,
                             truncation=True, padding=True).to(self.model.device)
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens,
                                      do_sample=False, num_beams=1)
        return [a.strip() for a in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def judge(self, premises: Sequence[str], hypotheses: Sequence[str], ids: Sequence[str],
              batch_size: int = 8) -> list[bool]:
        """Entailed? per (premise, hypothesis); ids name each pair's example in errors."""
        if not len(premises) == len(hypotheses) == len(ids):
            raise ValueError("premises, hypotheses and ids differ in length")
        texts = [nli_input(p, h) for p, h in zip(premises, hypotheses, strict=True)]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        verdicts: list[bool] = [False] * len(texts)
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start:start + max(1, batch_size)]
            for i, answer in zip(chunk, self.answers([texts[i] for i in chunk]), strict=True):
                if answer not in ("0", "1"):
                    raise TrueOutputError(
                        f"NLI model {self.name} answered {answer!r} (neither '0' nor '1') for "
                        f"example {ids[i]!r}, hypothesis {hypotheses[i][:80]!r}: is it a TRUE "
                        "NLI checkpoint (google/t5_xxl_true_nli_mixture)?")
                verdicts[i] = answer == "1"
        return verdicts


def resolve_dtype(dtype: str, cuda: bool) -> str:
    """`metrics.true_nli.dtype`: auto = bfloat16 on a GPU (as the official code), else float32."""
    if dtype not in DTYPES:
        raise ValueError(f"metrics.true_nli.dtype: {dtype!r} is not one of {DTYPES}")
    return ("bfloat16" if cuda else "float32") if dtype == "auto" else dtype


@functools.lru_cache(maxsize=1)
def load_true_nli(name: str, device: str | None = None, dtype: str = "auto",
                  max_length: int = 1024, max_new_tokens: int = 10) -> TrueNLI:
    """Load a local (or locally cached) seq2seq NLI checkpoint; OSError when it is not there."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from repro.device import device as default_device

    dev = torch.device(device) if device else default_device()
    torch_dtype = getattr(torch, resolve_dtype(dtype, dev.type == "cuda"))
    src = str(Path(name).expanduser()) if looks_like_path(name) else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
        model = AutoModelForSeq2SeqLM.from_pretrained(src, local_files_only=True,
                                                      dtype=torch_dtype)
    except ValueError as e:  # e.g. a checkpoint that is not seq2seq
        raise OSError(str(e)) from e
    model.to(dev).eval()
    return TrueNLI(name, model, tokenizer, max_length, max_new_tokens)


def judge_from_config(cfg: dict[str, Any]) -> tuple[Any, str | None]:
    """(judge function, None) from `metrics.true_nli`, or (None, why it cannot run)."""
    name = cfg.get("model")
    if not name:
        return None, "no TRUE NLI model configured (set metrics.true_nli.model)"
    if looks_like_path(str(name)) and not Path(str(name)).expanduser().is_dir():
        return None, f"TRUE NLI model path not found: {name}"
    opts = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    try:
        nli = load_true_nli(str(name), cfg.get("device"), str(opts["dtype"]),
                            int(opts["max_length"]), int(opts["max_new_tokens"]))
    except OSError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return None, (f"cannot load TRUE NLI model {name}: {first} (download it with "
                      "scripts/predownload.py)")
    batch = int(opts["batch_size"])
    return (lambda p, h, ids: nli.judge(p, h, ids, batch)), None


def signature(cfg: dict[str, Any]) -> str:
    opts = {**DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    return (f"nli={cfg.get('model')}|input=premise: ... hypothesis: ...|answer=1"
            f"|max_len={opts['max_length']}|greedy|max_new={opts['max_new_tokens']}")
