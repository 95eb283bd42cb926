"""Helpers for bench scripts: run a command while sampling the memory of its process tree, and
replace a named section of BENCHMARKS.md."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"


def run_sampled(cmd: list[str], cwd: Path, env: dict, interval: float = 0.25) -> dict:
    """Run cmd; return wall seconds, the peak summed RSS of its process tree (MiB), exit code."""
    start = time.perf_counter()
    # Output to a file, not a pipe: nobody reads a pipe while the command runs, and a full
    # pipe (64 KiB) would block it.
    log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(interval)
    log.seek(0)
    out = log.read()
    log.close()
    return {"seconds": time.perf_counter() - start, "peak_mib": peak / 2**20,
            "returncode": proc.returncode, "output": out}


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between <!-- name --> markers in BENCHMARKS.md."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    block = f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    BENCHMARKS.write_text(text)
