"""Figures (PNG + PDF, Agg): main metric per task as grouped bars, training-loss curves (small
multiples of all runs: a panel per task and dataset; and one figure per run), ablations (metric
against one setting, seeds as error bars) and the warmup-overlap histogram. Colours are fixed
per method across every figure (per method and variant in the training curves)."""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from repro.io import atomic_path
from repro.report.ablations import BASELINE_COLUMNS, POINT_COLUMNS
from repro.report.tables import row_order, tidy_frame
from repro.runs import Run
from repro.tasks import MAIN_METRIC, metric_name, task_name

METHOD_COLORS: dict[str, str] = {
    "sft": "#7f7f7f",
    "warmup": "#1f77b4",
    "ntp": "#2ca02c",
    "nsp": "#ff7f0e",
    "ntp+nsp": "#d62728",
}
OTHER_COLORS: tuple[str, ...] = (
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
)
HATCHES: tuple[str, ...] = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
DPI = 150


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """Colour per method: fixed for known methods, else palette colours in order of appearance."""
    colors: dict[str, str] = {}
    n_other = 0
    for m in dict.fromkeys(methods):
        if m in METHOD_COLORS:
            colors[m] = METHOD_COLORS[m]
        else:
            colors[m] = OTHER_COLORS[n_other % len(OTHER_COLORS)]
            n_other += 1
    return colors


def save_figure(fig: Figure, out_png: str | Path) -> Path:
    """Write `fig` atomically as PNG (dpi 150) and as a PDF with the same stem; return the PNG."""
    png = Path(out_png)
    FigureCanvasAgg(fig)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    with atomic_path(png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    return png


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _series_label(model: str, method: str, variant: str) -> str:
    return f"{model} · {method}" + ("" if variant == "default" else f" · {variant}")


def plot_main_metric(
    results: Sequence[dict[str, Any]], out_path_png: str | Path, baseline_method: str = "sft"
) -> Path:
    """Grouped bars of each task's main metric (mean over seeds, ± sample std when >1 seed).

    One panel per task (order of appearance); x = dataset, one bar per (model, method, variant),
    coloured by method and hatched by (model, variant). Skipped or missing values leave a gap.
    """
    tidy = tidy_frame(results)
    tasks = list(dict.fromkeys(tidy["task"]))
    colors = method_colors(m for _, m, _ in row_order(tidy, baseline_method))
    hatch_of: dict[tuple[str, str], str] = {}
    for model, _, variant in row_order(tidy, baseline_method):
        hatch_of.setdefault((model, variant), HATCHES[len(hatch_of) % len(HATCHES)])

    fig = Figure(figsize=(max(4.5, 4.5 * len(tasks)), 4.2), layout="constrained")
    axes = fig.subplots(1, max(1, len(tasks)), squeeze=False)[0]
    if not tasks:
        _empty(axes[0], "no results")
    handles: dict[str, Any] = {}
    for ax, task in zip(axes, tasks, strict=False):
        sub = tidy[tidy["task"] == task]
        metric = MAIN_METRIC.get(task, str(sub["metric"].iloc[0]))
        datasets = list(dict.fromkeys(sub["dataset"]))
        vals = sub[(sub["metric"] == metric) & sub["value"].notna()]
        ax.set_title(task_name(task))
        ax.set_xlabel("Dataset")
        ax.set_ylabel(f"{metric_name(metric)} (0-100)")
        if vals.empty:
            _empty(ax, f"no {metric_name(metric)} values")
            continue
        stats = vals.groupby(["model", "method", "variant", "dataset"], sort=False)["value"]
        mean, std, n = stats.mean(), stats.std(ddof=1), stats.count()
        series = row_order(sub, baseline_method)
        width = min(0.8 / len(series), 0.3)
        start = -width * len(series) / 2
        top = 0.0
        for i, key in enumerate(series):
            xs, hs, es = [], [], []
            for j, d in enumerate(datasets):
                k = (*key, d)
                if k in mean.index:
                    xs.append(j + start + width * (i + 0.5))
                    hs.append(float(mean[k]))
                    es.append(float(std[k]) if n[k] > 1 else 0.0)
                    top = max(top, hs[-1] + es[-1])
            if not xs:
                continue
            label = _series_label(*key)
            bars = ax.bar(
                xs,
                hs,
                width,
                yerr=es if any(es) else None,
                capsize=3,
                color=colors[key[1]],
                hatch=hatch_of[(key[0], key[2])],
                edgecolor="white",
                linewidth=0.5,
                label=label,
            )
            handles.setdefault(label, bars)
        ax.set_xticks(range(len(datasets)))
        long = any(len(d) > 12 for d in datasets)
        ax.set_xticklabels(datasets, rotation=20 if long else 0, ha="right" if long else "center")
        ax.set_xlim(-0.6, len(datasets) - 0.4)
        ax.set_ylim(0, max(1.0, top * 1.15))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=min(4, len(handles)),
            fontsize="small",
            frameon=False,
        )
    return save_figure(fig, out_path_png)


LOSS_STYLES = {"loss": ("-", "train loss"), "eval_loss": ("--", "eval loss")}
MODEL_MARKERS = "osD^v<>p"
LIGHT_COLORS: tuple[str, ...] = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                                 "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")


def _loss_points(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of one logged quantity, by step."""
    return sorted((float(r["step"]), float(r[key])) for r in rows
                  if r.get("step") is not None and r.get(key) is not None)


def _curve_keys(run_id: str) -> tuple[str, str, str]:
    """(panel, series, model) of a run's curves: its task and dataset, its method and variant,
    its model; a name that is not a run id is a series of its own in one untitled panel."""
    try:
        run = Run.from_id(run_id)
    except ValueError:
        return "", run_id, ""
    variant = "" if run.variant == "default" else f" · {run.variant}"
    return f"{task_name(run.task)} · {run.dataset}", f"{run.method}{variant}", run.model


def _series_colors(series: Iterable[str]) -> dict[str, str]:
    """A colour per method and variant ("method · variant"): the fixed colour of the method (of
    the variant for co-supervision's ntp, nsp, ntp+nsp) for its first variant, free palette
    colours for the others, in order of appearance."""
    palette = (*OTHER_COLORS, *LIGHT_COLORS)
    colors: dict[str, str] = {}
    for s in dict.fromkeys(series):
        method, _, variant = s.partition(" · ")
        fixed = METHOD_COLORS.get(method, METHOD_COLORS.get(variant))
        free = [c for c in (fixed, *palette) if c and c not in colors.values()]
        colors[s] = free[0] if free else palette[len(colors) % len(palette)]
    return colors


def plot_training_curves(
    curves: dict[str, list[dict[str, Any]]],
    out_path_png: str | Path,
    title: str = "Training curves",
) -> Path:
    """Small multiples of the training loss (solid) and eval loss (dashed, if logged) against
    step: a panel per task and dataset, a colour per method and variant, a marker per model
    where a panel has several, every seed drawn. `curves`: log rows per run id."""
    keys = {run: _curve_keys(run) for run in curves}
    panels = list(dict.fromkeys(k[0] for k in keys.values())) or [""]
    colors = _series_colors(k[1] for k in keys.values())
    markers = {m: MODEL_MARKERS[i % len(MODEL_MARKERS)]
               for i, m in enumerate(dict.fromkeys(k[2] for k in keys.values()))}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(max(6.4, 4.4 * ncols), 3.3 * nrows + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    # legend entries (label -> handle): series colours, then loss styles, then model markers
    legend: tuple[dict[str, Line2D], ...] = ({}, {}, {})
    for ax, panel in zip(axes, panels, strict=False):
        runs = [run for run in curves if keys[run][0] == panel]
        mark_models = len({keys[r][2] for r in runs}) > 1
        for run in runs:
            _, series, model = keys[run]
            for loss, (style, kind) in LOSS_STYLES.items():
                pts = _loss_points(curves[run], loss)
                if not pts:
                    continue
                few = loss == "eval_loss" or len(pts) == 1
                marker = markers[model] if mark_models else ("o" if few else None)
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, style, color=colors[series], lw=1.3, ms=3.5, marker=marker,
                        markevery=None if few else max(1, len(pts) // 8))
                legend[0].setdefault(series, Line2D([], [], color=colors[series], lw=2))
                legend[1].setdefault(kind, Line2D([], [], color="0.3", linestyle=style))
                if mark_models:
                    legend[2].setdefault(model, Line2D([], [], color="0.3", linestyle="none",
                                                       marker=markers[model]))
        ax.set_title(panel or title, fontsize="medium")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Optimizer step")
        ax.set_ylabel("Loss")
        if any(ax.get_lines()):
            ax.grid(alpha=0.3)
        else:
            _empty(ax, "no training logs")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if legend[0]:  # colours at the left, line styles and model markers at the right
        fig.legend(list(legend[0].values()), list(legend[0]), loc="outside lower left",
                   fontsize="small", frameon=False, ncols=min(2 * ncols, len(legend[0])))
        keys = {**legend[1], **legend[2]}
        fig.legend(list(keys.values()), list(keys), loc="outside lower right",
                   fontsize="small", frameon=False, ncols=min(ncols, len(keys)))
    if panels != [""]:
        fig.suptitle(title, fontsize="medium")
    return save_figure(fig, out_path_png)


def plot_training_curve(run_id: str, rows: list[dict[str, Any]], out_path_png: str | Path) -> Path:
    """One run's training (and eval) loss against step, titled with the run id."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    drawn = False
    for key, (style, kind) in LOSS_STYLES.items():
        pts = _loss_points(rows, key)
        if pts:
            xs, ys = zip(*pts, strict=True)
            marker = "o" if key == "eval_loss" or len(pts) == 1 else None
            ax.plot(xs, ys, style, color="C0", marker=marker, ms=3, label=kind)
            drawn = True
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Optimizer step")
    ax.set_ylabel("Loss")
    ax.set_title(run_id, fontsize="medium")
    if drawn:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", frameon=False)
    else:
        _empty(ax, "no training logs")
    return save_figure(fig, out_path_png)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def plot_ablation(points: pd.DataFrame | Sequence[dict[str, Any]], axis_label: str,
                  out_path_png: str | Path,
                  baselines: pd.DataFrame | Sequence[dict[str, Any]] | None = None) -> Path:
    """Metric against one ablation axis: a panel per (task, dataset), a line per series.

    points: columns task, dataset, series, method, metric, x, seed, value (one row per run);
    a series is one setting of everything else (model, method, other options). Points are
    means over seeds with the sample standard deviation as error bars. Numeric x values are
    placed on a numeric axis (log2 when they are powers of two spanning >= 4x), others in
    order of appearance. `baselines` (task, dataset, label, metric, value): runs without the
    axis (e.g. SFT), drawn as dashed horizontal lines (mean over their seeds). Both may be
    given as records (repro.report.ablations.ablation_points).
    """
    points = pd.DataFrame(points, columns=list(POINT_COLUMNS))
    if baselines is not None:
        baselines = pd.DataFrame(baselines, columns=list(BASELINE_COLUMNS))
    panels = list(dict.fromkeys(zip(points["task"], points["dataset"], strict=True)))
    ncols = min(3, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(max(6.4, 4.6 * ncols), 3.6 * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = method_colors(points["method"]) if len(points) else {}
    handles: dict[str, Any] = {}
    if not panels:
        _empty(axes[0], "no runs on this axis")
    for ax, (task, dataset) in zip(axes, panels, strict=False):
        sub = points[(points["task"] == task) & (points["dataset"] == dataset)]
        metric = str(sub["metric"].iloc[0])
        xs_all = list(dict.fromkeys(sub["x"]))
        numeric = all(_is_number(x) for x in xs_all)
        pos = {x: float(x) for x in xs_all} if numeric else {x: i for i, x in enumerate(xs_all)}
        series = list(dict.fromkeys(sub["series"]))
        markers = "osD^v<>p"
        for i, s in enumerate(series):
            g = sub[sub["series"] == s].dropna(subset=["value"])
            if g.empty:
                continue
            stats = g.groupby("x", sort=False)["value"].agg(["mean", "std", "count"])
            order = sorted(stats.index, key=lambda x: pos[x])
            xs = [pos[x] for x in order]
            ys = [float(stats.loc[x, "mean"]) for x in order]
            es = [float(stats.loc[x, "std"]) if stats.loc[x, "count"] > 1 else 0.0 for x in order]
            method = str(g["method"].iloc[0])
            color = colors.get(method, f"C{i}")
            h = ax.errorbar(xs, ys, yerr=es if any(es) else None, color=color, capsize=3,
                            marker=markers[i % len(markers)], ms=5, lw=1.5, label=s,
                            linestyle="-" if numeric else "none")
            handles.setdefault(s, h)
        if baselines is not None and len(baselines):
            b = baselines[(baselines["task"] == task) & (baselines["dataset"] == dataset)]
            for label, bg in b.groupby("label", sort=False):
                mean = float(bg["value"].mean())
                method = str(bg["method"].iloc[0]) if "method" in bg else ""
                color = colors.get(method, METHOD_COLORS.get(method, "0.5"))
                h = ax.axhline(mean, color=color, linestyle="--", lw=1.2, label=str(label))
                handles.setdefault(h.get_label(), h)
        if numeric:
            vals = sorted(pos.values())
            if vals[0] > 0 and all(float(v).is_integer() and int(v) & (int(v) - 1) == 0
                                   for v in vals) and vals[-1] / vals[0] >= 4:
                ax.set_xscale("log", base=2)
            ax.set_xticks(vals)
            ax.set_xticklabels([f"{v:g}" for v in vals])
            ax.minorticks_off()
        else:
            ax.set_xticks(range(len(xs_all)))
            ax.set_xticklabels([str(x) for x in xs_all], rotation=15 if len(xs_all) > 3 else 0)
            ax.set_xlim(-0.5, len(xs_all) - 0.5)
        lo, hi = ax.get_ylim()
        if hi - lo < 1.0:  # flat results: show a point-scale range, not ±0.05
            mid = (lo + hi) / 2
            ax.set_ylim(max(0.0, mid - 1.0), max(0.0, mid - 1.0) + 2.0)
        ax.set_title(f"{task_name(task)} · {dataset}")
        ax.set_xlabel(axis_label)
        ax.set_ylabel(f"{metric_name(metric)} (0-100)")
        ax.grid(alpha=0.3)
    for ax in axes[max(1, len(panels)):]:
        ax.set_visible(False)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(3, len(handles)), fontsize="small", frameon=False)
    title = textwrap.fill(f"Ablation: {axis_label}", 60)
    fig.suptitle(f"{title}\npoints: mean over seeds; error bars: sample standard deviation",
                 fontsize="medium")
    return save_figure(fig, out_path_png)


def plot_warmup_overlap(values: dict[tuple[str, str], Sequence[float]],
                        out_path_png: str | Path) -> Path:
    """Histogram of the per-example warmup-word overlap with the reference (percent).

    values: {(task, series label): overlaps of the non-empty warmups of that series' runs}; one
    panel per task, one step histogram per series with its mean as a dashed line.
    """
    tasks = list(dict.fromkeys(t for t, _ in values))
    fig = Figure(figsize=(max(6.4, 5.2 * len(tasks)), 4.2), layout="constrained")
    axes = fig.subplots(1, max(1, len(tasks)), squeeze=False)[0]
    if not tasks:
        _empty(axes[0], "no warmup runs")
    bins = [i * 10 for i in range(11)]
    for ax, task in zip(axes, tasks, strict=False):
        items = [(s, list(v)) for (t, s), v in values.items() if t == task]
        drawn = False
        for i, (label, vals) in enumerate(items):
            if not vals:
                continue
            color = OTHER_COLORS[i % len(OTHER_COLORS)] if i else METHOD_COLORS["warmup"]
            weights = [100.0 / len(vals)] * len(vals)
            mean = sum(vals) / len(vals)
            ax.hist(vals, bins=bins, weights=weights, histtype="step", lw=1.8, color=color,
                    label=f"{label} (mean {mean:.1f}%, n={len(vals)})",
                    linestyle=("-", "--", ":", "-.")[i % 4])
            ax.axvline(mean, color=color, linestyle="--", lw=1)
            drawn = True
        ax.set_title(f"{task_name(task)}: warmup words in the reference", fontsize="medium")
        ax.set_xlabel("Warmup words found in the reference (%)")
        ax.set_ylabel("Test examples (%)")
        ax.set_xlim(0, 100)
        if drawn:
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small", frameon=False, loc="upper center",
                      bbox_to_anchor=(0.5, -0.16), ncols=1)
        else:
            _empty(ax, "every warmup is empty")
    return save_figure(fig, out_path_png)
