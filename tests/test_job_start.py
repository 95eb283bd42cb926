"""How a workflow script starts (repro.workflow.start): its params without the key slots, its
thread count without importing torch."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from repro import param_keys as pk
from repro.io import canonical_json
from repro.workflow import start

SLICE = {"run": {"task": "translation", "seed": 0}, "training": {"learning_rate": 1e-4}}


def test_scripts_get_the_slices_without_the_slots(tmp_path):
    slice_json = canonical_json(SLICE)
    params = {"run": slice_json, "code": "abc",
              **dict(zip(pk.slot_names("run"), pk.slots(slice_json), strict=True))}
    smk = SimpleNamespace(log=[str(tmp_path / "job.log")], threads=1,
                          params=SimpleNamespace(items=params.items))
    out, err = sys.stdout, sys.stderr
    try:
        got = start(smk)
    finally:
        sys.stdout, sys.stderr = out, err
    assert got == {"run": SLICE, "code": "abc"}


def test_a_jobs_threads_without_importing_torch():
    """start() gives the job its thread count through the environment (read by torch when a
    script imports it) and imports nothing heavy itself."""
    code = ("import sys, os; from repro.workflow import use_threads; use_threads(1); "
            "print('torch' in sys.modules, os.environ['OMP_NUM_THREADS']); "
            "import torch; print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "1", "1"]
