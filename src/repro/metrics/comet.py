"""COMET, scored in a subprocess of the interpreter that has unbabel-comet installed.

COMET needs transformers<5 and numpy<2, so it lives in its own environment: envs/comet.yaml
(the pipeline's `comet` rule under `--sdm conda`) or .venv-comet (`make comet-env`).
`comet_score` runs `<python> -m repro.metrics.comet --in X.json --out Y.json` there with
PYTHONPATH set to our src/, and `main` (the worker) loads the checkpoint once and predicts in
batches. This module imports only the standard library at top level, since the COMET
environment has no repro deps.
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
REPO_DIR = SRC_DIR.parent
VENV_PYTHON = Path(".venv-comet", "bin", "python")
"""The interpreter `make comet-env` builds, relative to the working directory or the workflow."""
NO_ENV = ("no COMET environment: run Snakemake with --sdm conda (envs/comet.yaml), build "
          ".venv-comet with `make comet-env`, or set metrics.comet.python")


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


def _has_unbabel_comet() -> bool:
    """Whether this interpreter has unbabel-comet installed (its metadata: importing `comet`
    could pick up another module of that name, e.g. a script's)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("unbabel-comet")
    except PackageNotFoundError:
        return False
    return True


def find_comet_python(override: str | None = None,
                      roots: list[Path] | None = None) -> tuple[str | None, str | None]:
    """(interpreter with unbabel-comet, reason when there is none).

    In order: `override` (metrics.comet.python), this interpreter if it has comet (the rule's
    conda environment), then .venv-comet/bin/python under each of `roots` (default: the
    working directory, then this repository).
    """
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            return None, f"COMET python interpreter not found: {override}"
        return str(path), None
    if _has_unbabel_comet():
        return sys.executable, None
    for root in roots if roots is not None else [Path.cwd(), REPO_DIR]:
        candidate = Path(root) / VENV_PYTHON
        if candidate.is_file():
            return str(candidate.absolute()), None
    return None, NO_ENV


def comet_score(
    sources: list[str], hyps: list[str], refs: list[str], cfg: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """System-level COMET x100, or skipped with the reason it cannot be computed.

    cfg: model (checkpoint, model folder or hub id), batch_size, gpus (0 = CPU; at most one is
    used), python (interpreter with unbabel-comet; default: `find_comet_python`), threads (CPU
    threads of the worker; default: torch's). A worker crash that is not a missing
    model/package raises RuntimeError with the end of its stderr.
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
    python, reason = find_comet_python(cfg.get("python"))
    if python is None:
        return _skip(str(reason))
    if not hyps:
        return _skip("no examples")

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH")) if p)
    if cfg.get("threads"):
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(int(cfg["threads"]))
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


def score_files(predictions_path: str | os.PathLike[str], references_path: str | os.PathLike[str],
                params: dict[str, Any], python: str | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """The pipeline's comet rule: {"run", "n", "comet": entry} of a translation run.

    params: the rule's params ({"run", "comet": metrics.comet without `python`, "strict"});
    `python` overrides the interpreter search; `threads`: the job's CPU threads. Under strict,
    a COMET that cannot run raises MetricUnavailable (so that no skip is cached as this rule's
    output).
    """
    from repro.io import DataError, align, read_jsonl
    from repro.metrics.strict import require

    predictions, references = read_jsonl(predictions_path), read_jsonl(references_path)
    try:
        preds = align(predictions, references)
    except DataError as e:
        raise DataError(f"{predictions_path}: {e}") from e
    for ref in references:
        if not isinstance(ref.get("target"), str):
            raise DataError(f"{references_path}: reference {ref.get('id')!r} has no target")
    bad = [p["id"] for p in preds if not isinstance(p.get("hypothesis") or "", str)]
    if bad:
        raise DataError(f"{predictions_path}: prediction {bad[0]!r}: hypothesis is not a string")
    hyps = [p.get("hypothesis") or "" for p in preds]
    result = comet_score([r.get("source", "") for r in references], hyps,
                         [r["target"] for r in references],
                         {**params.get("comet", {}), "python": python, "threads": threads})
    require(result, params["run"], bool(params.get("strict")))
    return {"run": params["run"], "n": len(references), **result}


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
