"""Time a no-op rerun of the completed embedded default: what `snakemake` costs when nothing
changed (parse the workflow, expand the config, build the DAG, compare every job's params,
code and input checksums with the metadata, plan nothing).

Usage: python bench/noop_rerun.py [--workdir DIR] [--repeats N]
  DIR is brought up to date first (the full default takes minutes from nothing; a completed
  DIR costs only a no-op). Writes the "noop_rerun" section of BENCHMARKS.md.
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
from common import ROOT, run_sampled, write_section  # noqa: E402

NOTHING = "Nothing to be done"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="noop-bench-"))).resolve()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
            "--directory", str(work), "--configfile", str(ROOT / "config/config.yaml")]

    catch_up = run_sampled([*base, "--cores", "2"], ROOT, env)
    if catch_up["returncode"]:
        sys.exit(catch_up["output"][-3000:])
    jobs = sum(1 for _ in (work / ".snakemake" / "metadata").iterdir())

    cases = {
        "`snakemake --cores 2` (no-op rerun)": [*base, "--cores", "2"],
        "`snakemake -n` (dry run)": [*base, "--cores", "2", "-n"],
        "`snakemake -n --workflow-profile profiles/slurm`": [
            *base, "-n", "--workflow-profile", str(ROOT / "profiles/slurm")],
        "`python -m snakemake --version` (interpreter + import only)": [
            sys.executable, "-m", "snakemake", "--version"],
    }
    rows, medians = [], {}
    for name, cmd in cases.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()  # short runs: timed directly, not by the sampler
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            output = r.stdout + r.stderr
            if r.returncode or ("--version" not in cmd and NOTHING not in output):
                sys.exit(f"{name}: not a no-op\n{output[-3000:]}")
        medians[name] = statistics.median(times)
        rows.append(f"| {name} | {medians[name]:.2f} s | {min(times):.2f}-{max(times):.2f} s |")
    noop, startup = list(medians.values())[0], list(medians.values())[-1]
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    body = f"""## No-op rerun of the completed embedded default (`bench/noop_rerun.py`)

Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};
load average after the runs {load} (the cores are shared). The completed default records
{jobs} output files in `.snakemake/metadata`. Median and range of {args.repeats} runs each;
the catch-up run before them took {catch_up['seconds']:.0f} s
({"a no-op already" if NOTHING in catch_up["output"] else "jobs ran"}).

| command on the completed default | median | range |
| --- | ---: | ---: |
""" + "\n".join(rows) + f"""

A no-op rerun costs {noop:.1f} s, {noop / startup:.1f}x the bare start of Snakemake
({startup:.1f} s): parsing, config expansion, the DAG and the rerun checks (params, code,
input checksums) of every job add {noop - startup:.1f} s. Target: seconds."""
    write_section("noop_rerun", body)
    print(body)


if __name__ == "__main__":
    main()
