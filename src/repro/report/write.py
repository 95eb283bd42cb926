"""The report stage: every run's metrics, predictions and config -> tables, plots, run pages.

`write_report` is what the `report` rule runs. It reads each run's metrics.json (values,
signatures, per-example scores, provenance), predictions and references (for the paired
bootstrap marks and the warmup-overlap histogram), train log and resolved config (for the
ablation axes), and writes: the paper-style tables (Markdown, LaTeX, HTML, tidy CSV, cells CSV),
the main-metric plot, training curves (small multiples of all runs, and one per run), one
ablation plot per configured axis with at least two values, the warmup analysis (table and
histogram), and two HTML pages for the Snakemake report (runs with their config and
provenance; datasets with their filter statistics). Run ids come from the paths of the run
files (repro.runs.Run.from_path).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.io import atomic_path, read_json, read_jsonl, write_text
from repro.report.ablations import ablation_points
from repro.report.plots import (
    plot_ablation,
    plot_main_metric,
    plot_training_curve,
    plot_training_curves,
    plot_warmup_overlap,
)
from repro.report.published import load_published
from repro.report.render import (
    cells_frame,
    data_page,
    runs_page,
    to_html,
    to_latex,
    to_markdown,
)
from repro.report.significance import DEFAULT_SAMPLES, DEFAULT_SEED, describe, pvalues
from repro.report.tables import RowKey, baseline_pairs, task_table, tidy_frame
from repro.report.warmup import warmup_analysis_frame, warmup_analysis_markdown, warmup_overlaps
from repro.runs import Run

TABLE_FORMATS: tuple[str, ...] = ("md", "tex", "html", "csv", "cells")


# --- loading ------------------------------------------------------------------------------------


def load_results(metrics_paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One result record per run: the run's fields, its metrics, per-example scores (knowledge),
    provenance and analysis."""
    results = []
    for path in metrics_paths:
        m = read_json(path)
        results.append({**m["run"], "metrics": m["metrics"],
                        "per_example": m.get("per_example"),
                        "provenance": m.get("provenance") or {},
                        "analysis": m.get("analysis") or {}, "n": m.get("n")})
    return results


def by_run(paths: Sequence[str | Path]) -> dict[str, list[dict[str, Any]]]:
    """The jsonl rows of per-run files (train logs, predictions), by run id."""
    return {Run.from_path(p).id: read_jsonl(p) for p in paths}


def significance_pvalues(
    results: Sequence[dict[str, Any]],
    predictions: Mapping[str, Sequence[dict[str, Any]]],
    references: Mapping[tuple[str, str], Sequence[dict[str, Any]]],
    baseline_method: str = "sft",
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
    baselines: Mapping[str, str] | None = None,
) -> dict[tuple[RowKey, str, str], float]:
    """p-values of every table row against its baseline row, as the tables choose it
    (repro.report.significance.pvalues; predictions: run id -> predictions; baselines: the
    config's report.baselines)."""
    pairs = baseline_pairs(results, baseline_method, baselines)
    return pvalues(results, pairs, predictions, references, n_samples, seed)


# --- writing ----------------------------------------------------------------------------------


def write_task_tables(
    results: Sequence[dict[str, Any]],
    out_dir: str | Path,
    baseline_method: str = "sft",
    formats: Sequence[str] = ("md", "csv"),
    **table_kw: Any,
) -> list[Path]:
    """Write each task's table: `{task}.md`, `.tex`, `.html` (as asked in `formats`), the tidy
    per-run rows `{task}.csv` and, with "cells" in formats, the table cells `{task}_cells.csv`.
    `table_kw` go to `task_table` (groups per task as {task: groups}, pvalues, published)."""
    out = Path(out_dir)
    tidy = tidy_frame(results)
    groups: Mapping[str, Mapping[str, Sequence[str]]] = table_kw.pop("groups", None) or {}
    paths: list[Path] = []
    for task in dict.fromkeys(tidy["task"]):
        table = task_table(results, task, baseline_method, groups=groups.get(task), **table_kw)
        for fmt in formats:
            path = out / (f"{task}_cells.csv" if fmt == "cells" else f"{task}.{fmt}")
            if fmt == "md":
                write_text(path, to_markdown(table))
            elif fmt == "html":
                write_text(path, to_html(table))
            elif fmt == "tex":
                write_text(path, to_latex(table))
            elif fmt == "csv":
                with atomic_path(path) as tmp:
                    tidy[tidy["task"] == task].to_csv(tmp, index=False)
            elif fmt == "cells":
                with atomic_path(path) as tmp:
                    cells_frame(table).to_csv(tmp, index=False)
            else:
                raise ValueError(f"unknown table format {fmt!r}")
            paths.append(path)
    return paths


@dataclass
class ReportOutputs:
    """Where the report writes; plots are PNG paths (a PDF is written beside each)."""

    tables_dir: Path
    main_plot: Path
    curves_plot: Path
    run_curves: dict[str, Path] = field(default_factory=dict)  # run id -> PNG
    ablation_plots: dict[str, Path] = field(default_factory=dict)  # axis name -> PNG
    warmup_plot: Path | None = None
    warmup_table: Path | None = None  # .md; the .csv beside it
    runs_page: Path | None = None
    data_page: Path | None = None


def write_report(
    metrics_paths: Sequence[str | Path],
    log_paths: Sequence[str | Path],
    out: ReportOutputs,
    *,
    baseline: str = "sft",
    baselines: Mapping[str, str] | None = None,
    prediction_paths: Sequence[str | Path] = (),
    reference_paths: Sequence[str | Path] = (),
    config_paths: Sequence[str | Path] = (),
    filter_stats_paths: Sequence[str | Path] = (),
    published: str | Path | None = None,
    groups: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ablations: Sequence[Mapping[str, Any]] = (),
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
    titles: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write every table, plot and page of the report; return the paths written.

    reference_paths are results/data/<task>/<dataset>/test.jsonl; prediction, config and log
    paths lie in the run directories; `groups` (task -> group -> datasets) add to the groups
    of the published file; `ablations` are the axes to plot (repro.report.ablations);
    `baselines` (task -> "method" or "method/variant") picks a table's baseline row first;
    `titles` (task -> caption) replaces a table's neutral title.
    """
    results = load_results(metrics_paths)
    predictions = by_run(prediction_paths)
    references = {(Path(p).parent.parent.name, Path(p).parent.name): read_jsonl(p)
                  for p in reference_paths}
    configs = {Run.from_path(p).id: read_json(p) for p in config_paths}
    entries, pub_groups = load_published(published)
    all_groups = {t: {**pub_groups.get(t, {}), **(groups or {}).get(t, {})}
                  for t in {*pub_groups, *(groups or {})}}

    tested = (significance_pvalues(results, predictions, references, baseline, n_samples, seed,
                                   baselines) if n_samples > 0 else {})
    written = write_task_tables(
        results, out.tables_dir, baseline, formats=TABLE_FORMATS, groups=all_groups,
        baselines=baselines, titles=titles,
        pvalues=tested, published=entries, significance=describe(n_samples, seed))
    written.append(plot_main_metric(results, out.main_plot, baseline_method=baseline))
    curves = by_run(log_paths)
    written.append(plot_training_curves(curves, out.curves_plot))
    for rid, path in out.run_curves.items():
        written.append(plot_training_curve(rid, curves.get(rid, []), path))
    for axis in ablations:
        path = out.ablation_plots.get(axis["name"])
        if path is None:
            continue
        points, bases = ablation_points(results, configs, axis, ablations, baseline)
        written.append(plot_ablation(points, str(axis.get("label") or axis["name"]), path, bases))
    if out.warmup_table is not None:
        frame = warmup_analysis_frame(results)
        write_text(out.warmup_table, warmup_analysis_markdown(frame))
        with atomic_path(out.warmup_table.with_suffix(".csv")) as tmp:
            frame.to_csv(tmp, index=False)
        written += [out.warmup_table, out.warmup_table.with_suffix(".csv")]
    if out.warmup_plot is not None:
        langs = {Run.from_id(rid).dataset: (c.get("data") or {}).get("target_lang")
                 for rid, c in configs.items()}
        overlaps = warmup_overlaps(results, predictions, references, langs)
        written.append(plot_warmup_overlap(overlaps, out.warmup_plot))
    if out.runs_page is not None:
        write_text(out.runs_page, runs_page(results, configs))
        written.append(out.runs_page)
    if out.data_page is not None:
        stats: dict[str, dict[str, Any]] = {}
        for p in filter_stats_paths:  # a dataset's training splits and test split, merged
            stats.setdefault(f"{Path(p).parent.parent.name}/{Path(p).parent.name}",
                             {}).update(read_json(p))
        write_text(out.data_page, data_page(stats))
        written.append(out.data_page)
    for p in written:
        print(p)
    return written

