"""Prepare a run's base model directory: base.json (+ the tiny model's files under hf/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.io import DataError, iter_jsonl, write_json
from repro.models import build_tiny, resolve_hf


def training_texts(train_path: Path) -> list[str]:
    """Sources and targets of the training split: what a tiny model's tokenizer is trained on."""
    texts = [t for r in iter_jsonl(train_path) for t in (r.get("source"), r.get("target")) if t]
    if not texts:
        raise DataError(f"{train_path}: no text to train a tokenizer on")
    return texts


def prepare_base_model(name: str, model_cfg: dict[str, Any], train_path: Path,
                       out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if model_cfg["kind"] == "tiny":
        manifest = build_tiny(name, model_cfg, training_texts(train_path), out_dir / "hf")
    else:
        manifest = resolve_hf(name, model_cfg)
    write_json(out_dir / "base.json", manifest)
    return manifest
