"""The lines the workflow prints when it ends (its `onsuccess`): where the tables and plots of
this config are. Light: no imports beyond the standard library."""

from __future__ import annotations

from pathlib import Path


def where_lines(results_dir: str, files: list[str]) -> list[str]:
    """`Tables: ...` and `Plots: ...` naming the files of `files` that exist (a run of a few
    targets may have made none of them), then how to build the HTML report."""
    made = [f for f in files if Path(f).is_file()]
    tables = [f for f in made if f.endswith(".md")]
    plots = [f for f in made if f.endswith(".png")]
    lines = []
    if tables:
        lines.append(f"Tables: {' '.join(tables)}")
    if plots:
        lines.append(f"Plots:  {' '.join(plots)}")
    if tables or plots:
        lines.append(f"Report: snakemake <same options> --report {results_dir}/report.html")
    return lines
