"""Prepare a run's base model directory: base.json (+ the tiny model's files under hf/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.io import DataError, iter_jsonl, read_json, write_json
from repro.models import arch_of, build_tiny, resolve_hf
from repro.pretrain_jobs import SUMMARY


def training_texts(train_path: Path) -> list[str]:
    """Sources and targets of the training split: what a tiny model's tokenizer is trained on."""
    texts = [t for r in iter_jsonl(train_path) for t in (r.get("source"), r.get("target")) if t]
    if not texts:
        raise DataError(f"{train_path}: no text to train a tokenizer on")
    return texts


def pretrained_manifest(name: str, model_cfg: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The manifest of a tiny model pretrained in model_dir (repro.pretrain): runs load its
    weights and tokenizer."""
    summary = read_json(model_dir / SUMMARY)
    family = model_cfg["family"]
    return {"name": name, "kind": "tiny", "family": family, "arch": arch_of(family),
            "path": str(model_dir), "n_params": summary["n_params"],
            "vocab_size": summary["vocab_size"],
            "pretrained": {k: summary[k] for k in ("objective", "steps", "corpus")}}


def prepare_base_model(name: str, model_cfg: dict[str, Any], train_path: Path | None,
                       out_dir: Path, pretrained: Path | None = None) -> dict[str, Any]:
    """base.json in out_dir: a pretrained tiny model's (`pretrained`: its directory), a tiny
    model built now with a tokenizer trained on the split at train_path, or a hub model's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if pretrained is not None:
        manifest = pretrained_manifest(name, model_cfg, pretrained)
    elif model_cfg["kind"] == "tiny":
        if train_path is None:
            raise DataError(f"models.{name}: a tiny model without pretraining needs the "
                            "dataset's training split")
        manifest = build_tiny(name, model_cfg, training_texts(train_path), out_dir / "hf")
    else:
        manifest = resolve_hf(name, model_cfg)
    write_json(out_dir / "base.json", manifest)
    return manifest
