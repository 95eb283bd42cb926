"""The demo numbers quoted in README.md, generated from one completed run of the embedded default.

README.md marks each generated part as a region, `<!-- bench:NAME -->...<!-- /bench:NAME -->`
(a block when the markers stand on their own lines, else inline); `excerpts` computes every
region's text from the run's results/ and measurements, `fill_regions` rewrites the regions of a
text; bench/demo_run.py does both after the run (`make bench`), so that README.md and
BENCHMARKS.md quote the same run of a stated commit.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from repro.report.cells import Cell, format_cell
from repro.report.significance import ALPHA, MARK

REGION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->(?P<body>.*?)<!-- /bench:(?P=name) -->",
                    re.S)
KNOWLEDGE_COLUMNS = ("Correctness", "Retrieval", "R-precision (not in paper)")


def fill_regions(text: str, contents: Mapping[str, str], where: str = "text") -> str:
    """`text` with the body of every bench region replaced by `contents[name]`; ValueError
    naming the regions `contents` lacks (a region must not keep numbers of another run)."""
    missing = sorted({m["name"] for m in REGION.finditer(text)} - set(contents))
    if missing:
        raise ValueError(f"{where}: no generated text for region(s) {', '.join(missing)}")

    def fill(m: re.Match[str]) -> str:
        body = contents[m["name"]].strip("\n")
        if m["body"].startswith("\n"):  # a block: markers on lines of their own
            body = f"\n{body}\n"
        return f"<!-- bench:{m['name']} -->{body}<!-- /bench:{m['name']} -->"

    return REGION.sub(fill, text)


def commit_of(root: Path) -> str:
    """The checked-out commit, with "+uncommitted changes" when the work tree differs."""
    git = ["git", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return f"{head}+uncommitted changes" if dirty else head


def markdown_panel(md: str, title: str) -> str:
    """The table under `## title` of a Markdown table file."""
    lines = md.splitlines()
    start = lines.index(f"## {title}") + 2
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def _cell(row: Mapping[str, Any]) -> str:
    """A row of a table's cells CSV as the table shows it (without footnote numbers)."""
    def num(key: str) -> float | None:
        return None if pd.isna(row[key]) else float(row[key])

    p = num("p_value")
    mark = MARK if p is not None and p < ALPHA and num("mean") is not None else ""
    return format_cell(Cell(num("mean"), num("std"), int(row["n_seeds"]), num("gain"),
                            marks=mark, not_applicable=bool(row.get("not_applicable", False))))


def knowledge_excerpt(cells: pd.DataFrame, datasets: list[str],
                      columns: tuple[str, ...] = KNOWLEDGE_COLUMNS) -> str:
    """Correctness, retrieval and R-precision on each dataset (not the averages) of the
    co-supervision table's cells, one row per model, method and variant."""
    keep = cells[cells["metric"].isin(columns) & cells["column"].isin(datasets)]
    heads = [(m, d) for d in datasets for m in columns if ((keep["metric"] == m)
                                                          & (keep["column"] == d)).any()]
    lines = ["| Model | Method | Variant | " + " | ".join(f"{m} ({d})" for m, d in heads) + " |",
             "| --- | --- | --- | " + " | ".join("---:" for _ in heads) + " |"]
    for (model, method, variant), g in keep.groupby(["model", "method", "variant"], sort=False):
        by = {(r["metric"], r["column"]): _cell(r) for _, r in g.iterrows()}
        lines.append(f"| {model} | {method} | {variant} | "
                     + " | ".join(by.get(h, "-") for h in heads) + " |")
    return "\n".join(lines)


def mean_metric(tidy: pd.DataFrame, metric: str, **where: str) -> float:
    """Mean over seeds of one metric of the runs matching `where` (model, method, ...)."""
    rows = tidy[tidy["metric"] == metric]
    for key, value in where.items():
        rows = rows[rows[key] == value]
    if rows["value"].isna().all():
        raise ValueError(f"no {metric} value for {where}")
    return float(rows["value"].mean())


def excerpts(results: Path, measures: Mapping[str, float], commit: str) -> dict[str, str]:
    """The text of every README region, from a completed run's results/ directory and its
    measurements (seconds, peak_mib)."""
    tables = results / "tables"
    mc = pd.read_csv(tables / "multiple_choice.csv")
    accuracy = {m: mean_metric(mc, "accuracy", model="tiny_t5", method=m)
                for m in ("warmup", "sft")}
    minutes = round(measures["seconds"] / 60)
    return {
        "demo-commit": f"commit `{commit}`",
        "demo-cost": (f"About {minutes} minutes on two cores ({measures['seconds']:.0f} s "
                      f"measured, peak memory {measures['peak_mib'] / 1024:.1f} GiB)"),
        "translation-bleu": markdown_panel((tables / "translation.md").read_text(), "BLEU"),
        "mc-accuracy": (f"accuracy {accuracy['warmup']:.1f} against "
                        f"{accuracy['sft']:.1f}"),
        "knowledge-excerpt": knowledge_excerpt(
            pd.read_csv(tables / "knowledge_cells.csv"),
            list(dict.fromkeys(pd.read_csv(tables / "knowledge.csv")["dataset"]))),
    }
