"""One rank of a training job: `python -m repro.train_cli JOB.json` (run by repro.launch
under torchrun; each rank trains its share, rank 0 writes the outputs).

JOB.json: {"resolved": the run's resolved training config, "manifest": the base model's
base.json, "data_dir", "model_out", "log_out", "ckpt_dir": paths; optional "settings": training
keys that change no model (repro.train.train_run)}.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

PATH_KEYS = ("data_dir", "model_out", "log_out", "ckpt_dir")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """train_run on the job's config and paths."""
    from repro.train import train_run

    missing = [k for k in ("resolved", "manifest", *PATH_KEYS) if k not in job]
    if missing:
        raise KeyError(f"training job: missing {missing}")
    paths = [Path(job[k]) for k in PATH_KEYS]
    return train_run(job["resolved"], job["manifest"], *paths, settings=job.get("settings"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m repro.train_cli JOB.json", file=sys.stderr)
        return 2
    rank = os.environ.get("RANK", "0")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    summary = run_job(job)
    if rank == "0":
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
