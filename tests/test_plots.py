"""Plots from hand-made records: PNG and PDF written, readable, robust to sparse inputs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

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
