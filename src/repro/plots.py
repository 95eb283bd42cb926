"""Figures: main metric per task as grouped bars, and training-loss curves (PNG + PDF, Agg)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from repro.io import atomic_path
from repro.tables import MAIN_METRIC, metric_name, row_order, task_name, tidy_frame

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


def plot_training_curves(curves: dict[str, list[dict[str, Any]]], out_path_png: str | Path) -> Path:
    """Training loss (solid) and eval loss (dashed, if logged) against step, one colour per run."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    palette = [f"C{i}" for i in range(10)]
    drawn = False
    for i, (run, rows) in enumerate(curves.items()):
        color = palette[i % len(palette)]
        for key, style, kind in (("loss", "-", "train"), ("eval_loss", "--", "eval")):
            pts = sorted(
                (float(r["step"]), float(r[key]))
                for r in rows
                if r.get("step") is not None and r.get(key) is not None
            )
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            marker = "o" if kind == "eval" or len(pts) == 1 else None
            ax.plot(xs, ys, style, color=color, marker=marker, ms=3, label=f"{run} ({kind})")
            drawn = True
    ax.set_xlabel("Optimizer step")
    ax.set_ylabel("Loss")
    ax.set_title("Training curves")
    if drawn:
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        _empty(ax, "no training logs")
    return save_figure(fig, out_path_png)
