"""Plots from hand-made records: PNG and PDF written, readable, robust to sparse inputs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from repro.report import plots
from repro.report.plots import (
    METHOD_COLORS,
    method_colors,
    plot_ablation,
    plot_main_metric,
    plot_training_curve,
    plot_training_curves,
    plot_warmup_overlap,
)


def rec(task, dataset, method, seed, metrics, model="m", variant="default"):
    return {
        "task": task,
        "dataset": dataset,
        "model": model,
        "method": method,
        "variant": variant,
        "seed": seed,
        "metrics": metrics,
    }


def check_outputs(png: Path) -> None:
    pdf = png.with_suffix(".pdf")
    assert png.is_file() and pdf.is_file()
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    assert pdf.read_bytes().startswith(b"%PDF")
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert not list(png.parent.glob(".*"))  # no temporary files left


def test_main_metric_full(tmp_path):
    results = [
        rec("translation", ds, method, seed, {"bleu": {"value": 10.0 + seed + i}})
        for i, ds in enumerate(["a", "b"])
        for method in ["sft", "warmup", "ntp+nsp", "custom"]
        for seed in (0, 1)
    ]
    results += [
        rec("summarization", "s", "sft", 0, {"rougeL": {"value": 30.0}}),
        rec("summarization", "s", "ntp", 0, {"rougeL": {"value": 31.0}}, model="m2"),
        rec("knowledge", "k", "sft", 0, {"f1": {"value": 50.0}}),
        rec("multiple_choice", "q", "nsp", 0, {"accuracy": {"value": 70.0}}, variant="v2"),
    ]
    out = plot_main_metric(results, tmp_path / "fig" / "main.png")
    assert out == tmp_path / "fig" / "main.png"
    check_outputs(out)


def test_main_metric_one_run(tmp_path):
    out = plot_main_metric(
        [rec("translation", "a", "sft", 0, {"bleu": {"value": 41.2}})], tmp_path / "one.png"
    )
    check_outputs(out)


def test_main_metric_skipped_and_missing(tmp_path):
    results = [
        rec("translation", "a", "sft", 0, {"bleu": {"skipped": "no refs"}}),
        rec("translation", "b", "sft", 0, {"bleu": {"value": 20.0}}),
        rec("translation", "b", "warmup", 0, {"chrf": {"value": 20.0}}),  # no BLEU at all
        rec("summarization", "s", "sft", 0, {"rougeL": {"skipped": "no model"}}),  # empty panel
    ]
    check_outputs(plot_main_metric(results, tmp_path / "skipped.png"))


def test_main_metric_no_results(tmp_path):
    check_outputs(plot_main_metric([], tmp_path / "empty.png"))


def test_method_colors_fixed_and_distinct():
    colors = method_colors(["custom", "sft", "other", "warmup", "custom"])
    assert colors["sft"] == METHOD_COLORS["sft"] and colors["warmup"] == METHOD_COLORS["warmup"]
    assert len(set(colors.values())) == 4
    assert set(METHOD_COLORS) >= {"sft", "warmup", "ntp", "nsp", "ntp+nsp"}
    # a method's colour does not depend on which other methods are present
    assert method_colors(["ntp"])["ntp"] == method_colors(["sft", "ntp", "x"])["ntp"]


@pytest.mark.parametrize(
    "curves",
    [
        {
            "run-a": [
                {"step": 10, "epoch": 0.5, "loss": 3.2},
                {"step": 20, "epoch": 1.0, "loss": 2.8},
                {"step": 20, "eval_loss": 2.9},
                {"step": 40, "loss": 2.1},
                {"step": 40, "eval_loss": 2.5},
            ],
            "run-b": [{"step": 10, "loss": 3.5}, {"step": 20, "loss": 3.0}],
        },
        {"only": [{"step": 5, "loss": 1.0}]},  # one run, one point, no eval rows
        {"only-eval": [{"step": 5, "eval_loss": 1.0}], "empty": []},
        {},
    ],
    ids=["two-runs", "one-point", "eval-only", "none"],
)
def test_training_curves(tmp_path, curves):
    out = plot_training_curves(curves, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    check_outputs(out)


# --- ablations, per-run curves, warmup overlap ---------------------------------------------


def ablation_frame(xs, methods=("warmup",), seeds=(0, 1), datasets=("a",), task="translation"):
    rows = []
    for ds in datasets:
        for method in methods:
            for x in xs:
                for seed in seeds:
                    value = 20.0 + (x if isinstance(x, int | float) else len(str(x))) + seed
                    rows.append({"task": task, "dataset": ds, "metric": "bleu",
                                 "method": method, "model": "m", "x": x, "seed": seed,
                                 "value": value, "series": f"m · {method}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "xs", [[1, 2, 4, 8], [0.1, 0.5, 1.0], ["gpt2", "tinyllama", "llama2"]],
    ids=["powers-of-two", "numeric", "categorical"],
)
def test_ablation_plot(tmp_path, xs):
    points = ablation_frame(xs, methods=("warmup", "ntp+nsp"), datasets=("a", "b"))
    bases = pd.DataFrame([{"task": "translation", "dataset": "a", "label": "m · sft",
                           "method": "sft", "metric": "bleu", "value": 21.0}])
    out = plot_ablation(points, "Warmup samples n (count)", tmp_path / "abl.png", bases)
    check_outputs(out)


def test_ablation_plot_sparse(tmp_path):
    points = ablation_frame([2, 4], seeds=(0,))
    points.loc[0, "value"] = float("nan")  # a skipped metric
    check_outputs(plot_ablation(points, "n", tmp_path / "sparse.png"))
    empty = points.iloc[0:0]
    check_outputs(plot_ablation(empty, "n", tmp_path / "empty.png"))


def test_training_curve_per_run(tmp_path):
    rows = [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}, {"step": 2, "eval_loss": 2.7}]
    check_outputs(plot_training_curve("translation/a/m/sft/default/seed0", rows,
                                      tmp_path / "run.png"))
    check_outputs(plot_training_curve("x", [], tmp_path / "none.png"))


def test_warmup_overlap_histogram(tmp_path):
    values = {
        ("translation", "a · m · warmup"): [0.0, 25.0, 50.0, 50.0, 100.0],
        ("translation", "b · m · warmup"): [40.0, 60.0],
        ("summarization", "s · m · warmup"): [],
    }
    check_outputs(plot_warmup_overlap(values, tmp_path / "overlap.png"))
    check_outputs(plot_warmup_overlap({}, tmp_path / "none.png"))


def test_training_curves_small_multiples(tmp_path, monkeypatch):
    """19 runs as in the embedded default: a panel per task and dataset, a colour per method and
    variant (seeds share it), train and eval styles, and every legend inside the figure."""
    runs = [f"translation/{d}/{m}/{me}/{v}/seed{s}"
            for d, m, me, v in [("xa", "t5", "sft", "default"), ("xa", "t5", "warmup", "n1"),
                                ("xa", "t5", "warmup", "n2"), ("xa", "t5", "warmup", "n4"),
                                ("xa", "llama", "sft", "default"), ("xa", "llama", "warmup", "n2"),
                                ("xb", "t5", "sft", "default"), ("xb", "t5", "warmup", "n2")]
            for s in (0, 1)]
    runs += [f"knowledge/kb/llama/cosup/{v}/seed0" for v in ("ntp", "nsp", "ntp+nsp")]
    curves = {r: [{"step": k, "loss": 5.0 - k / 10 - i / 20} for k in range(1, 30)]
              + [{"step": 29, "eval_loss": 4.0 - i / 20}] for i, r in enumerate(runs)}
    figures = []
    real = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, png: (figures.append(fig),
                                                                real(fig, png))[1])
    check_outputs(plots.plot_training_curves(curves, tmp_path / "curves.png"))
    fig = figures[0]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["Translation · xa", "Translation · xb",
                                               "Knowledge · kb"]
    xa = axes[0]
    assert len(xa.get_lines()) == 12 * 2  # 6 series x 2 seeds, train and eval
    colors = {line.get_color() for line in xa.get_lines()}
    assert len(colors) == 4  # sft, warmup n1, n2, n4 (the two models share them)
    legends = fig.legends
    labels = [t.get_text() for leg in legends for t in leg.get_texts()]
    assert labels[:5] == ["sft", "warmup · n1", "warmup · n2", "warmup · n4", "cosup · ntp"]
    assert {"train loss", "eval loss", "t5", "llama"} <= set(labels)
    assert len(labels) == 7 + 2 + 2  # 7 method-variant colours, 2 line styles, 2 models
    fig.canvas.draw()
    box = fig.bbox
    for leg in legends:
        b = leg.get_window_extent()
        assert b.x0 >= box.x0 - 1 and b.x1 <= box.x1 + 1 and b.y0 >= box.y0 - 1, labels
    cosup = {line.get_color() for line in axes[2].get_lines()}
    assert cosup == {METHOD_COLORS["ntp"], METHOD_COLORS["nsp"], METHOD_COLORS["ntp+nsp"]}
