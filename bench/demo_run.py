"""Measure the embedded default end to end: wall time, peak memory of the whole process tree,
every run's metrics, and the time of a no-op rerun; then quote that one run everywhere.

Targets (issue: foundation): under 10 minutes and 4 GiB on 2 cores, BLEU >= 30.
Usage: python bench/demo_run.py [--workdir DIR]   (`make bench`)
Writes the "demo" section of BENCHMARKS.md, the marked regions of README.md (bench/excerpts.py:
translation BLEU panel, co-supervision excerpt, multiple-choice accuracies, time and memory)
and docs/demo_main_metric.png, all from the same run, and states the commit they come from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, run_sampled, write_section  # noqa: E402
from excerpts import commit_of, excerpts, fill_regions  # noqa: E402

from repro.runs import RUNS_ROOT  # noqa: E402

# The knowledge task's headline metrics (metrics.json has every KILT metric).
KNOWLEDGE = ("correctness", "retrieval", "r_precision")


def result_rows(work: Path) -> list[str]:
    """One Markdown row per run of the completed default: its computed metrics."""
    rows = []
    for path in sorted((work / RUNS_ROOT).glob("**/metrics.json")):
        m = json.loads(path.read_text())
        run = m["run"]
        keep = KNOWLEDGE if run["task"] == "knowledge" else tuple(m["metrics"])
        vals = ", ".join(f"{k} {m['metrics'][k]['value']:.1f}" for k in keep
                         if "value" in m["metrics"].get(k, {}))
        rows.append(f"| {run['task']} | {run['dataset']} | {run['model']} | {run['method']} | "
                    f"{run['variant']} | {vals} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="demo-bench-"))
    commit = commit_of(ROOT)
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / ".snakemake", ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
           "--directory", str(work), "--configfile", str(ROOT / "config/config.yaml")]
    full = run_sampled(cmd, ROOT, env)
    if full["returncode"]:
        sys.exit(full["output"][-3000:])
    noop = run_sampled(cmd, ROOT, env)
    rows = result_rows(work)
    body = f"""## Embedded default (`make demo`, `bench/demo_run.py`)

Commit `{commit}`; machine: {os.cpu_count()} cores, {platform.machine()}, Python
{platform.python_version()}. README.md quotes the same run (`make bench` writes both).

| measure | value | target |
| --- | --- | --- |
| wall time of `snakemake --cores 2` from nothing | {full['seconds']:.0f} s | < 600 s |
| peak memory of the process tree (summed RSS) | {full['peak_mib']:.0f} MiB | < 4096 MiB |
| no-op rerun of the completed default | {noop['seconds']:.1f} s | seconds |

| task | dataset | model | method | variant | metrics |
| --- | --- | --- | --- | --- | --- |
""" + "\n".join(rows)
    readme = ROOT / "README.md"  # filled first: a region without generated text stops here
    text = fill_regions(readme.read_text(encoding="utf-8"),
                        excerpts(work / "results", full, commit), str(readme))
    write_section("demo", body)
    readme.write_text(text, encoding="utf-8")
    shutil.copyfile(work / "results/plots/main_metric.png", ROOT / "docs/demo_main_metric.png")
    print(body)


if __name__ == "__main__":
    main()
