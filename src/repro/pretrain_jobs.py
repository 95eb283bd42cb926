"""The light, DAG-time half of pretraining (`models.<m>.pretrain`, rules/models.smk): which
models pretrain, where their checkpoint goes, the corpus files and params of the job, and the
checks of the section. repro.pretrain does the work.

A tiny model with a `pretrain` section is pretrained once (rule `pretrain`, one job per model)
on the unlabelled texts of the datasets its `corpus` names; every run of the model (SFT,
warmup, co-supervision, on any dataset) then starts from that checkpoint and its tokenizer.
Hub models (`kind: hf`) are pretrained already and never have the section.
"""

from __future__ import annotations

from typing import Any

from repro.errors import ConfigError
from repro.models import DECODER_ONLY, ENCODER_DECODER, arch_of
from repro.runs import results_dir

SUMMARY = "pretrain.json"  # beside the pretrained model: objective, steps, corpus, sizes
# objective -> the architecture it trains (`auto` picks the one of the model's family)
OBJECTIVES = {"span_corruption": ENCODER_DECODER, "causal_lm": DECODER_ONLY}


def pretrains(config: dict[str, Any], model: str) -> bool:
    """Whether the model has a pretraining stage (a `pretrain` section)."""
    return bool(config["models"][model].get("pretrain"))


def pretrained_dir(config: dict[str, Any], model: str) -> str:
    """The pretraining job's directory under the config's results root: model/ (the output),
    train_log.jsonl, checkpoints/."""
    return f"{results_dir(config)}/pretrained/{model}"


def objective_of(model_cfg: dict[str, Any]) -> str:
    """The model's pretraining objective: `objective`, or with `auto` its family's (span
    corruption for an encoder-decoder model, as T5 and mT5 were pretrained; causal LM for a
    decoder-only model, as Llama was)."""
    chosen = model_cfg["pretrain"].get("objective", "auto")
    arch = arch_of(model_cfg["family"])
    if chosen == "auto":
        return next(o for o, a in OBJECTIVES.items() if a == arch)
    return chosen


def corpus_files(config: dict[str, Any], model: str) -> list[str]:
    """The files the model's pretraining corpus is read from: the training split and the
    passages of each dataset of `pretrain.corpus`."""
    files = []
    for name in config["models"][model]["pretrain"]["corpus"]:
        task = config["datasets"][name]["task"]
        data = f"{results_dir(config)}/data/{task}/{name}"
        files += [f"{data}/{f}.jsonl" for f in ("train", "passages")]
    return files


def check_pretrain(config: dict[str, Any]) -> None:
    """ConfigError naming the key for a `pretrain` section that cannot run: on a hub model, an
    objective of the other architecture, a corpus dataset that is unknown or has no training
    split of its own (train_on), or several GPUs (a tiny model pretrains in one process)."""
    for model, m in config["models"].items():
        section = m.get("pretrain")
        if not section:
            continue
        key = f"models.{model}.pretrain"
        if m["kind"] != "tiny":
            raise ConfigError(f"{key}: only tiny models pretrain (kind {m['kind']!r} is a "
                              "pretrained checkpoint already); remove the section")
        objective = section.get("objective", "auto")
        if objective != "auto" and OBJECTIVES[objective] != arch_of(m["family"]):
            raise ConfigError(f"{key}.objective: {objective} trains a {OBJECTIVES[objective]} "
                              f"model; {model} is {arch_of(m['family'])} (use auto)")
        for name in section["corpus"]:
            d = config["datasets"].get(name)
            if d is None:
                raise ConfigError(f"{key}.corpus: unknown dataset '{name}' (defined under "
                                  f"`datasets`: {', '.join(sorted(config['datasets']))})")
            if d.get("train_on"):
                raise ConfigError(f"{key}.corpus: '{name}' has no training split of its own "
                                  f"(train_on: {d['train_on']}); name '{d['train_on']}'")
        if (m.get("resources") or {}).get("gpu", 0) > 1:
            raise ConfigError(f"models.{model}.resources.gpu: a tiny model with a pretrain "
                              "section pretrains in one process; ask for at most 1 GPU")
