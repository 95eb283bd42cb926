"""Snakemake adapter: tables, plots and report pages over every run (repro.report.write)."""

from pathlib import Path

import _src_path  # noqa: F401  (repro from src/)

from repro.config import resolve
from repro.io import write_json
from repro.report.write import ReportOutputs, write_report
from repro.runs import Run
from repro.workflow import start


def paths(files):
    """A named input/output as a list of paths (Snakemake gives one file as a string)."""
    return [files] if isinstance(files, str) else list(files)


smk = snakemake  # noqa: F821
params = start(smk)["report"]
out = smk.output
for path in paths(out.configs):  # results/report/configs/<run id>.json
    write_json(path, resolve(smk.config, Run.from_path(path)))
write_report(
    paths(smk.input.metrics),
    paths(smk.input.train_logs),
    ReportOutputs(
        tables_dir=Path(paths(out.tables)[0]).parent,
        main_plot=Path(out.main_plot),
        curves_plot=Path(out.curves_plot),
        run_curves={Run.from_path(p).id: Path(p) for p in paths(out.run_curves)},
        ablation_plots={Path(p).stem.removeprefix("ablation_"): Path(p)
                        for p in paths(out.ablations)},
        warmup_plot=Path(paths(out.warmup)[0]) if paths(out.warmup) else None,
        warmup_table=Path(paths(out.warmup_tables)[0]) if paths(out.warmup_tables) else None,
        runs_page=Path(out.runs_page),
        data_page=Path(out.data_page),
    ),
    baseline=params["baseline"],
    baselines=params.get("baselines"),
    prediction_paths=paths(smk.input.predictions),
    reference_paths=paths(smk.input.references),
    config_paths=paths(out.configs),
    filter_stats_paths=paths(smk.input.filter_stats),
    published=(paths(smk.input.published) or [None])[0],
    groups=params["groups"],
    ablations=params["ablations"],
    n_samples=params["bootstrap_samples"],
    seed=params["bootstrap_seed"],
    titles=params.get("titles"),
)
