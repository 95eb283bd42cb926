"""Checks before a training job resumes from its checkpoints.

A run's checkpoints live in `{run}/checkpoints/checkpoint-<step>/` (the HF Trainer's layout).
Before resuming, `resumable_checkpoint` decides which one, if any, may be used:

- The checkpoints must belong to the same run config: `run_config.json` beside them holds the
  canonical training config they were made with. An edited config (learning rate, data, model)
  makes Snakemake rerun the job; the old checkpoints are then discarded, never resumed from.
- A checkpoint without a readable `trainer_state.json` was being written when the job died
  (the Trainer writes that file last): it is removed and the one before it is used.
- A finished checkpoint whose files are missing or unreadable (corrupt), or whose weights do not
  fit the model (mismatched), stops the job with a CheckpointError naming the file.

Checkpoints do not depend on the number of processes that wrote them: weights and optimizer
state are saved whole (DDP: rank 0's replica; FSDP: FULL_STATE_DICT, `optimizer.bin`), so a
run resumes on another number of GPUs. Only the RNG states are per rank (`rng_state.pth` for one
process, `rng_state_<rank>.pth` for several); the Trainer resumes without those it does not
find (the data order is restored from the step count either way).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from repro.io import canonical_json, write_text

log = logging.getLogger(__name__)

RUN_CONFIG = "run_config.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
# The Trainer's optimizer state; accelerate's name for it under FSDP.
OPTIMIZERS = ("optimizer.pt", "optimizer.bin")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from; the message names the file at fault."""


def checkpoint_dirs(ckpt_dir: Path) -> list[Path]:
    """checkpoint-<step> folders of ckpt_dir, newest (highest step) first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir()
             if p.is_dir() and (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def is_finished(ckpt: Path) -> bool:
    """True once the Trainer wrote trainer_state.json, its last file of a checkpoint."""
    try:
        json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a weights file, reading only what is needed to check it."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    return {k: tuple(v.shape) for k, v in state.items()}


def check_checkpoint(ckpt: Path, model: Any = None, needs_optimizer: bool = True) -> None:
    """Raise CheckpointError naming the file if a finished checkpoint is corrupt or mismatched."""
    state_file = ckpt / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{state_file}: unreadable trainer state ({e})") from e
    m = CHECKPOINT_RE.match(ckpt.name)
    if m and int(m.group(1)) != step:
        raise CheckpointError(f"{state_file}: global_step {step} does not match the folder name")
    weights = next((ckpt / w for w in WEIGHTS if (ckpt / w).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{ckpt}: no model weights ({' or '.join(WEIGHTS)})")
    try:
        shapes = _weight_shapes(weights)
    except Exception as e:  # safetensors and torch raise several kinds on a damaged file
        raise CheckpointError(f"{weights}: corrupt weights file ({type(e).__name__}: {e})") from e
    if not shapes:
        raise CheckpointError(f"{weights}: no tensors")
    if model is not None:
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        unknown = sorted(set(shapes) - set(expected))
        wrong = [f"{k}: {shapes[k]} in the checkpoint, {expected[k]} in the model"
                 for k in sorted(set(shapes) & set(expected)) if shapes[k] != expected[k]]
        if unknown:
            wrong.append(f"tensors the model lacks: {', '.join(unknown[:3])}")
        if wrong:
            detail = "; ".join(wrong[:3])
            raise CheckpointError(f"{weights}: does not fit the run's model ({detail})")
    if needs_optimizer:
        _check_optimizer(ckpt)


def _check_optimizer(ckpt: Path) -> None:
    """The optimizer and scheduler states are there and the optimizer's loads."""
    optimizer = next((ckpt / o for o in OPTIMIZERS if (ckpt / o).is_file()), None)
    if optimizer is None:
        raise CheckpointError(f"{ckpt / OPTIMIZERS[0]}: missing from a finished checkpoint")
    if not (ckpt / "scheduler.pt").is_file():
        raise CheckpointError(f"{ckpt / 'scheduler.pt'}: missing from a finished checkpoint")
    try:
        import torch

        torch.load(str(optimizer), map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise CheckpointError(f"{optimizer}: corrupt ({type(e).__name__}: {e})") from e


def resumable_checkpoint(ckpt_dir: Path, run_config: dict[str, Any], model: Any = None,
                         needs_optimizer: bool = True) -> Path | None:
    """The checkpoint to resume from, or None to start fresh (see the module docstring).

    Also (re)writes ckpt_dir/run_config.json, so the checkpoints saved next are tied to this
    run config.
    """
    marker = ckpt_dir / RUN_CONFIG
    wanted = canonical_json(run_config)
    ckpts = checkpoint_dirs(ckpt_dir)
    if ckpts:
        try:
            previous = canonical_json(json.loads(marker.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            previous = None
        if previous != wanted:
            why = "another run config" if previous is not None else f"no readable {marker}"
            log.warning("discarding %d checkpoint(s) in %s (made with %s)", len(ckpts),
                        ckpt_dir, why)
            for ckpt in ckpts:
                shutil.rmtree(ckpt)
            ckpts = []
    chosen = None
    for ckpt in ckpts:
        if not is_finished(ckpt):
            log.warning("removing %s: interrupted while being written (no readable "
                        "trainer_state.json)", ckpt)
            shutil.rmtree(ckpt)
            continue
        check_checkpoint(ckpt, model, needs_optimizer)
        chosen = ckpt
        break
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_text(marker, json.dumps(run_config, indent=1, sort_keys=True) + "\n")
    if chosen is not None:
        log.info("resuming from %s", chosen)
    return chosen
