"""The options of every method: one frozen dataclass each, every field with its help and the
stages of a run that read it, and one error type (ConfigError) for bad options.

Light (no torch): Snakemake checks the options of every run while it builds the DAG, before
any job runs, and gives each job only the options it reads (`options_read_by`), so that an
edit reruns exactly the jobs it touches.

Stages: `train` (the training job) and `decode` (passage index and decoding). Co-supervision
splits training into `gen` and `embseq` (repro.methods.cosup_options): its `train` is both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from repro.errors import ConfigError

OptionsT = TypeVar("OptionsT")
NORMALIZATIONS = ("token", "sequence")
WARMUP_LOSSES = ("target_mean", "joint", "reward_weighted", "reinforce")
SELECTIONS = ("gumbel", "hf")  # the KV sampler's beam selection (repro.methods.sampling)
JOB_STAGES = {"train": frozenset({"train", "gen", "embseq"}), "decode": frozenset({"decode"})}


def option(default: Any, stages: str, help: str) -> Any:
    """A dataclass field with its help and the stages that read it ("train", "decode",
    "train decode"; co-supervision: "gen", "embseq", "decode" in any combination)."""
    return field(default=default, metadata={"help": help, "stages": frozenset(stages.split())})


def option_stages(cls: type) -> dict[str, frozenset[str]]:
    """Field name -> the stages that read it."""
    return {f.name: f.metadata["stages"] for f in fields(cls)}


def option_help(cls: type) -> dict[str, str]:
    """Field name -> its help (config/README.md says the same at more length)."""
    return {f.name: f.metadata["help"] for f in fields(cls)}


def options_from_dict(cls: type[OptionsT], options: dict[str, Any], method: str) -> OptionsT:
    """The options dataclass `cls` from a config mapping; ConfigError for an unknown key,
    naming the method and the known keys."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{method}: unknown options {unknown} (known: {sorted(known)})")
    return cls(**options)


def require(checks: list[tuple[bool, str]], method: str, options: dict[str, Any]) -> None:
    """ConfigError naming the method, the first failed check and the options given."""
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{method}: {msg}, got {options}")


@dataclass(frozen=True)
class SFTOptions:
    loss_normalization: str = option(
        "token", "train", "token: the cross-entropy summed over all target tokens of the batch "
        "over their number (the Hugging Face loss, warmup's default); sequence: each target's "
        "mean, then the mean over the batch")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> SFTOptions:
        opts = options_from_dict(cls, options, "sft")
        require([(opts.loss_normalization in NORMALIZATIONS,
                  f"loss_normalization must be one of {NORMALIZATIONS}")], "sft", options)
        return opts


@dataclass(frozen=True)
class WarmupOptions:
    n: int = option(4, "train", "warmups sampled per training example")
    warmup_len: int = option(8, "train decode", "max new tokens of a warmup")
    num_beams: int = option(4, "train", "beams of the warmup sampler (raised to n if smaller)")
    do_sample: bool = option(True, "train", "sample the warmups (else plain beam search)")
    separator: str = option(" || ", "train decode", "text between warmup and target; it must "
                            "come back from the tokenizer as it went in")
    loss: str = option("target_mean", "train", "target_mean (the paper's Jensen bound), joint, "
                       "reward_weighted or reinforce")
    loss_normalization: str = option("token", "train", "token (as SFT's) | sequence")
    decode_warmup: str = option("beam", "decode", "beam | sample: how the test-time warmup is "
                                "made before the target is beam-searched")
    sampler: str = option("kv", "train", "kv (repro.methods.sampling, the KV-cache beam "
                          "sampler) | generate (model.generate)")
    top_k: int = option(0, "train", "each beam samples among its top_k next tokens; 0 = all")
    selection: str = option("gumbel", "train", "kv sampler: gumbel (Gumbel-top-k of the K x V "
                            "continuations) | hf (Hugging Face's beam search with sampling)")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> WarmupOptions:
        opts = options_from_dict(cls, options, "warmup")
        require([(opts.loss in WARMUP_LOSSES, f"loss must be one of {WARMUP_LOSSES}"),
                 (opts.n >= 1 and opts.warmup_len >= 1, "n and warmup_len must be >= 1"),
                 (opts.decode_warmup in ("beam", "sample"), "decode_warmup must be beam | sample"),
                 (opts.sampler in ("kv", "generate"), "sampler must be kv | generate"),
                 (opts.loss_normalization in NORMALIZATIONS,
                  f"loss_normalization must be one of {NORMALIZATIONS}"),
                 (opts.selection in SELECTIONS, f"selection must be one of {SELECTIONS}"),
                 (opts.top_k >= 0, "top_k must be >= 0")], "warmup", options)
        return opts
