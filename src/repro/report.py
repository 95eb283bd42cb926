"""The report stage: read every run's metrics.json and train log, write tables and plots."""

from __future__ import annotations

from pathlib import Path

from repro.io import read_json, read_jsonl
from repro.plots import plot_main_metric, plot_training_curves
from repro.tables import write_task_tables


def load_results(metrics_paths: list[str]) -> list[dict]:
    """One result record per run: the run's fields plus its metrics."""
    results = []
    for path in metrics_paths:
        m = read_json(path)
        results.append({**m["run"], "metrics": m["metrics"]})
    return results


def load_curves(log_paths: list[str]) -> dict[str, list[dict]]:
    """Training log rows per run id (the run dir relative to results/runs)."""
    curves = {}
    for path in log_paths:
        run_id = str(Path(path).parent).split("results/runs/", 1)[-1]
        curves[run_id] = read_jsonl(path)
    return curves


def write_report(metrics_paths: list[str], log_paths: list[str], tables_dir: Path,
                 main_plot: Path, curves_plot: Path, baseline: str) -> list[Path]:
    results = load_results(metrics_paths)
    written = write_task_tables(results, tables_dir, baseline_method=baseline)
    written.append(plot_main_metric(results, main_plot, baseline_method=baseline))
    written.append(plot_training_curves(load_curves(log_paths), curves_plot))
    for p in written:
        print(p)
    return written
