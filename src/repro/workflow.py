"""What every workflow script does first: log to the job's log file, use its threads, read
its params."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from repro.param_keys import is_slot


def start(smk: Any) -> dict[str, Any]:
    """Redirect stdout/stderr to the job's log, apply its thread count, return its params decoded.

    String params holding JSON (the canonical config slices) are decoded; others pass through;
    the key slots that track the slices (repro.param_keys) are left out.
    """
    if smk.log:
        log = open(smk.log[0], "a", buffering=1, encoding="utf-8")  # noqa: SIM115 (job lifetime)
        sys.stdout = sys.stderr = log
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    use_threads(getattr(smk, "threads", None))
    params: dict[str, Any] = {}
    for key, value in smk.params.items():
        if is_slot(key):  # the tracked key slots of a slice (repro.param_keys), not for scripts
            continue
        params[key] = json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value
    return params


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def use_threads(n: int | None) -> None:
    """Use the cores Snakemake gave the job (threads), not every core of the node: through the
    environment for libraries not loaded yet (torch reads OMP_NUM_THREADS when imported), and
    torch's own setting when the script has loaded it already. A job that never needs torch
    (fetch, filter, most evaluations) does not pay for importing it (about a second)."""
    if not n or n <= 0:
        return
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
