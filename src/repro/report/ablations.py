"""Ablation axes (a setting of the resolved config, e.g. the number of warmups n) and the points
of their plots (each run's main metric at its value of the axis).

`ablation_axes` decides from the config alone which ablation plots exist, so that the report
rule's outputs are known when Snakemake builds the DAG; this module is pure Python for that
reason (no pandas).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from repro.runs import Run
from repro.tasks import MAIN_METRIC

DEFAULT_ABLATIONS: tuple[dict[str, Any], ...] = (
    {"name": "n", "path": "method.options.n", "methods": ["warmup"], "default": 4,
     "label": "Warmup samples per example n (count)"},
    {"name": "warmup_len", "path": "method.options.warmup_len", "methods": ["warmup"],
     "default": 8, "label": "Maximum warmup length (tokens)"},
    {"name": "separator", "path": "method.options.separator", "methods": ["warmup"],
     "default": " || ", "label": "Warmup separator"},
    {"name": "warmup_loss", "path": "method.options.loss", "methods": ["warmup"],
     "default": "target_mean", "label": "Warmup loss variant"},
    {"name": "lambda", "path": "method.options.nsp_weight", "methods": ["cosup"],
     "default": 0.01, "label": "NSP loss weight λ"},
    {"name": "batch_size", "path": "training.batch_size",
     "label": "Training batch size (sequences)"},
    {"name": "embseq", "path": "method.options.embseq_path", "methods": ["cosup"],
     "label": "Embseq backbone"},
)
POINT_COLUMNS: tuple[str, ...] = ("task", "dataset", "metric", "method", "value", "model", "x",
                                  "seed", "series")
BASELINE_COLUMNS: tuple[str, ...] = ("task", "dataset", "metric", "method", "value", "label")


def axis_value(resolved: Mapping[str, Any], axis: Mapping[str, Any]) -> Any:
    """The run's value on an ablation axis (dotted `path` into its resolved config), the axis
    `default` for its `methods` when unset, None when the axis does not apply to the run.
    A mapping or list value is returned as its JSON text."""
    methods = axis.get("methods")
    method = (resolved.get("method") or {}).get("name") or (resolved.get("run") or {}).get(
        "method")
    if methods and method not in methods:
        return None
    node: Any = resolved
    for part in str(axis["path"]).split("."):
        if not isinstance(node, Mapping) or part not in node:
            return axis.get("default")
        node = node[part]
    if isinstance(node, dict | list):
        return json.dumps(node, sort_keys=True)
    return node


def _key(value: Any) -> str:
    """A value as a comparable key: 1, 1.0 and True stay three values (as in the config)."""
    return json.dumps(value, sort_keys=True, default=str)


def ablation_axes(
    resolved_runs: Sequence[Mapping[str, Any]], axes: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The axes (of `axes`, default DEFAULT_ABLATIONS) taking at least two values among the runs
    of one (task, dataset, model, method): those get an ablation plot."""
    out = []
    for axis in axes if axes is not None else DEFAULT_ABLATIONS:
        seen: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for r in resolved_runs:
            v = axis_value(r, axis)
            if v is not None:
                run = r["run"]
                seen[(run["task"], run["dataset"], run["model"], run["method"])].add(_key(v))
        if any(len(vals) >= 2 for vals in seen.values()):
            out.append(dict(axis))
    return out


def ablation_points(
    results: Sequence[Mapping[str, Any]],
    resolved: Mapping[str, Mapping[str, Any]],
    axis: Mapping[str, Any],
    all_axes: Sequence[Mapping[str, Any]] = (),
    baseline: str = "sft",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(points, baselines) of one axis for `plots.plot_ablation`, one dict per run.

    resolved: run id -> resolved config. A run is a point (POINT_COLUMNS) when the axis applies
    to it and its (task, dataset, model, method) takes >= 2 values on the axis; its series is
    model · method plus the other axes' values that differ between the points of its panel
    (task, dataset). Baseline-method runs the axis does not apply to are reference lines
    (BASELINE_COLUMNS) in the panels that have points.
    """
    points, bases = [], []
    for r in results:
        cfg, metric = resolved.get(Run.from_record(r).id), MAIN_METRIC.get(r["task"])
        if cfg is None or metric is None:
            continue
        entry = (r.get("metrics") or {}).get(metric)
        common = {"task": r["task"], "dataset": r["dataset"], "metric": metric,
                  "method": r["method"],
                  "value": entry.get("value") if isinstance(entry, dict) else None}
        x = axis_value(cfg, axis)
        if x is not None:
            others = {a["name"]: axis_value(cfg, a) for a in all_axes if a["name"] != axis["name"]}
            points.append({**common, "model": r["model"], "x": x, "seed": r["seed"],
                           "others": others})
        elif r["method"] == baseline:
            bases.append({**common, "label": f"{r['model']} · {r['method']}"})

    def group(p: Mapping[str, Any]) -> tuple[str, ...]:
        return p["task"], p["dataset"], p["model"], p["method"]

    values: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for p in points:
        values[group(p)].add(_key(p["x"]))
    points = [p for p in points if len(values[group(p)]) >= 2]
    settings: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (panel, axis): values
    for p in points:
        for name, v in p["others"].items():
            settings[(p["task"], p["dataset"], name)].add(_key(v))
    for p in points:
        others = p.pop("others")
        varying = [f"{k}={v}" for k, v in others.items()
                   if len(settings[(p["task"], p["dataset"], k)]) > 1]
        p["series"] = " · ".join([p["model"], p["method"], *([", ".join(varying)] if varying
                                                             else [])])
    panels = {(p["task"], p["dataset"]) for p in points}
    return points, [b for b in bases if (b["task"], b["dataset"]) in panels]
