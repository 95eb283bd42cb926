"""COMET, scored in a subprocess of the interpreter that has unbabel-comet installed.

COMET needs transformers<5 and numpy<2, so it lives in its own venv. `comet_score` runs
`<python> -m repro.metrics.comet --in X.json --out Y.json` there with PYTHONPATH set to our
src/, and `main` (the worker) loads the checkpoint once and predicts in batches. This module
imports only the standard library at top level, since the COMET venv has no repro deps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SRC_DIR = Path(__file__).resolve().parents[2]


def _skip(reason: str) -> dict[str, dict[str, Any]]:
    return {"comet": {"skipped": reason}}


def resolve_checkpoint(model: str) -> tuple[str | None, str | None]:
    """(checkpoint path or hub id, skip reason) for a configured model.

    A .ckpt file or a COMET model folder (with checkpoints/model.ckpt) gives its checkpoint;
    a name that looks like a path but does not exist is skipped; anything else is taken as a
    hub id, resolved by the worker from the local HF cache only.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return str(path.resolve()), None
    if path.is_dir():
        ckpt = path / "checkpoints" / "model.ckpt"
        if ckpt.is_file():
            return str(ckpt.resolve()), None
        return None, f"COMET model folder has no checkpoints/model.ckpt: {model}"
    if model.startswith(("/", ".", "~")) or model.endswith(".ckpt") or model.count("/") > 1:
        return None, f"COMET model path not found: {model}"
    return model, None


def comet_score(
    sources: list[str], hyps: list[str], refs: list[str], cfg: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """System-level COMET x100, or skipped with the reason it cannot be computed.

    cfg: model (checkpoint, model folder or hub id), batch_size, gpus (0 = CPU; at most one is
    used), python (interpreter with unbabel-comet; default: this one). A worker crash that is
    not a missing model/package raises RuntimeError with the end of its stderr.
    """
    from repro.io import DataError, read_json, write_json  # parent side only

    if not len(sources) == len(hyps) == len(refs):
        raise DataError(f"{len(sources)} sources, {len(hyps)} hypotheses, {len(refs)} references")
    model = cfg.get("model")
    if not model:
        return _skip("no COMET model configured (set metrics.comet.model)")
    checkpoint, reason = resolve_checkpoint(str(model))
    if reason:
        return _skip(reason)
    python = str(cfg.get("python") or sys.executable)
    if not Path(python).is_file():
        return _skip(f"COMET python interpreter not found: {python}")
    if not hyps:
        return _skip("no examples")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="comet-") as tmp:
        in_path, out_path = Path(tmp, "in.json"), Path(tmp, "out.json")
        write_json(
            in_path,
            {
                "model": checkpoint,
                "batch_size": int(cfg.get("batch_size", 32)),
                "gpus": min(int(cfg.get("gpus", 0)), 1),
                "samples": [
                    {"src": s, "mt": h, "ref": r}
                    for s, h, r in zip(sources, hyps, refs, strict=True)
                ],
            },
        )
        cmd = [python, "-m", "repro.metrics.comet", "--in", str(in_path), "--out", str(out_path)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out_path.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise RuntimeError(f"COMET worker failed (exit {proc.returncode}):\n{tail}")
        result = read_json(out_path)
    if "skipped" in result:
        return _skip(result["skipped"])
    return {
        "comet": {
            "value": 100.0 * float(result["system_score"]),
            "signature": f"comet={result['comet_version']}|model={model}",
            "n": len(result["scores"]),
        }
    }


# ---- worker: runs in the COMET interpreter; standard library + comet only ----


def _comet_version(comet: Any) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unbabel-comet")
    except PackageNotFoundError:
        return str(getattr(comet, "__version__", "unknown"))


def _local_checkpoint(model: str) -> str:
    """The checkpoint of a hub id from the local HF cache (never the network); OSError if absent."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=model, local_files_only=True)
    except Exception as e:  # LocalEntryNotFoundError, invalid repo id, ...
        raise OSError(f"COMET model {model} not found locally (offline): {type(e).__name__}") from e
    ckpt = Path(folder, "checkpoints", "model.ckpt")
    if not ckpt.is_file():
        raise OSError(f"COMET model {model}: no checkpoints/model.ckpt in cached snapshot")
    return str(ckpt)


def run_worker(request: dict[str, Any]) -> dict[str, Any]:
    """Score request["samples"] ({src, mt, ref}) with request["model"]; see `comet_score`."""
    try:
        import comet
        from comet import load_from_checkpoint
    except Exception as e:  # not installed, or broken (e.g. numpy/transformers mismatch)
        return {"skipped": f"unbabel-comet not importable by {sys.executable}: {e}"}
    import inspect

    model_ref = request["model"]
    try:
        ckpt = model_ref if Path(model_ref).is_file() else _local_checkpoint(model_ref)
        kwargs = {}
        if "local_files_only" in inspect.signature(load_from_checkpoint).parameters:
            kwargs["local_files_only"] = True
        model = load_from_checkpoint(ckpt, **kwargs)
    except OSError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        return {"skipped": f"cannot load COMET model {model_ref}: {first}"}
    gpus = int(request.get("gpus", 0))
    pred = model.predict(
        request["samples"],
        batch_size=int(request.get("batch_size", 32)),
        gpus=gpus,
        progress_bar=False,
        accelerator="cpu" if gpus == 0 else "auto",
    )
    scores = [float(s) for s in pred.scores]
    return {
        "system_score": float(pred.system_score),
        "scores": scores,
        "checkpoint": ckpt,
        "comet_version": _comet_version(comet),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="COMET worker: score a JSON request.")
    parser.add_argument("--in", dest="in_path", required=True)
    parser.add_argument("--out", dest="out_path", required=True)
    args = parser.parse_args(argv)
    with open(args.in_path, encoding="utf-8") as f:
        request = json.load(f)
    result = run_worker(request)
    with open(args.out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
