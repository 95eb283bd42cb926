"""Time dry runs of the paper configs (target: under 10 s each, issue "A production Snakemake
workflow"): parse, validate, expand every run, compute each job's params and code hash, build
the DAG. The files a config names are stand-ins (empty files, as tests/test_paper_configs.py
makes them), so nothing is downloaded.

Usage: python bench/paper_dry_runs.py [--repeats N]   Writes the "paper_dry_runs" section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_section  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from test_paper_configs import placeholders  # noqa: E402

CONFIGS = ("paper_warmup.yaml", "paper_cosup.yaml", "paper_cosup_released.yaml")
TARGET_S = 10.0


def dry_run_seconds(configfile: str, work: Path, env: dict) -> tuple[float, str]:
    """Wall time of one `snakemake -n` and its job-count line."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile",
           str(ROOT / "config" / configfile), "--directory", str(work), "--cores", "1"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    if proc.returncode:
        sys.exit(proc.stdout[-2000:] + proc.stderr[-2000:])
    total = next((ln.split()[-1] for ln in (proc.stdout + proc.stderr).splitlines()
                  if ln.startswith("total")), "?")
    return seconds, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT / "src")}
    rows = []
    for configfile in CONFIGS:
        work = Path(tempfile.mkdtemp(prefix="dry-bench-"))
        placeholders(configfile, work)
        runs = [dry_run_seconds(configfile, work, env) for _ in range(args.repeats)]
        times = [s for s, _ in runs]
        rows.append(f"| `{configfile}` | {runs[0][1]} | {statistics.median(times):.1f} s | "
                    f"{min(times):.1f}-{max(times):.1f} s | < {TARGET_S:.0f} s |")
    body = "\n".join([
        "## Dry runs of the paper configs (`bench/paper_dry_runs.py`)",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}; {args.repeats} dry runs each (`snakemake -n`, stand-in "
        "files for the data and checkpoints the config names).",
        "",
        "| config | jobs | median | range | target |",
        "| --- | ---: | ---: | ---: | --- |",
        *rows,
    ])
    print(body)
    write_section("paper_dry_runs", body)


if __name__ == "__main__":
    main()
