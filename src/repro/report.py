"""The report stage: every run's metrics, predictions and config -> tables, plots, run pages.

`write_report` is what the `report` rule runs. It reads each run's metrics.json (values,
signatures, provenance), predictions and references (for the paired bootstrap marks and the
warmup-overlap histogram), train log and resolved config (for the ablation axes), and writes:
the paper-style tables (Markdown, LaTeX, HTML, tidy CSV, cells CSV), the main-metric plot,
training curves (all runs, and one per run), one ablation plot per configured axis with at
least two values, the warmup-overlap histogram, and two HTML pages for the Snakemake report
(runs with their config and provenance; datasets with their filter statistics).

`ablation_axes` decides from the config alone which ablation plots exist, so that the report
rule's outputs are known when Snakemake builds the DAG.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repro.io import read_json, read_jsonl, write_text
from repro.plots import (
    plot_ablation,
    plot_main_metric,
    plot_training_curve,
    plot_training_curves,
    plot_warmup_overlap,
)
from repro.significance import (
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    SUPPORTED,
    consistent,
    describe,
    example_scorers,
    paired_bootstrap,
)
from repro.tables import (
    MAIN_METRIC,
    RUN_KEYS,
    RowKey,
    baseline_row,
    choose_baseline,
    load_published,
    row_order,
    table_spec,
    tidy_frame,
    write_task_tables,
)

log = logging.getLogger(__name__)

TABLE_FORMATS: tuple[str, ...] = ("md", "tex", "html", "csv", "cells")

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


# --- ablation axes ----------------------------------------------------------------------------


def axis_value(resolved: Mapping[str, Any], axis: Mapping[str, Any]) -> Any:
    """The run's value on an ablation axis (dotted `path` into its resolved config), the axis
    `default` for its `methods` when unset, None when the axis does not apply to the run."""
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


def ablation_axes(
    resolved_runs: Sequence[Mapping[str, Any]], axes: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The axes (of `axes`, default DEFAULT_ABLATIONS) taking at least two values among the runs
    of one (task, dataset, model, method): those get an ablation plot."""
    out = []
    for axis in axes if axes is not None else DEFAULT_ABLATIONS:
        seen: dict[tuple[str, ...], set[str]] = {}
        for r in resolved_runs:
            v = axis_value(r, axis)
            if v is None:
                continue
            run = r["run"]
            key = (run["task"], run["dataset"], run["model"], run["method"])
            seen.setdefault(key, set()).add(json.dumps(v))
        if any(len(vals) >= 2 for vals in seen.values()):
            out.append(dict(axis))
    return out


def ablation_points(
    results: Sequence[dict[str, Any]],
    resolved: Mapping[str, Mapping[str, Any]],
    axis: Mapping[str, Any],
    all_axes: Sequence[Mapping[str, Any]] = (),
    baseline: str = "sft",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, baselines) for `plots.plot_ablation` on one axis.

    A run is a point when the axis applies to it and its (task, dataset, model, method) takes
    >= 2 values on the axis; its series is model · method plus the other settings (other axes'
    values) that differ between the points of its panel. Baseline-method runs the axis does not
    apply to become reference lines.
    """
    rows, base_rows = [], []
    for r in results:
        run_id = run_id_of(r)
        cfg = resolved.get(run_id)
        metric = MAIN_METRIC.get(r["task"])
        entry = (r.get("metrics") or {}).get(metric or "", {})
        value = entry.get("value") if isinstance(entry, dict) else None
        if cfg is None or metric is None:
            continue
        x = axis_value(cfg, axis)
        common = {"task": r["task"], "dataset": r["dataset"], "metric": metric,
                  "method": r["method"], "value": value}
        if x is None:
            if r["method"] == baseline:
                base_rows.append({**common, "label": f"{r['model']} · {r['method']}"})
            continue
        others = {a["name"]: axis_value(cfg, a) for a in all_axes if a["name"] != axis["name"]}
        rows.append({**common, "model": r["model"], "x": x, "seed": r["seed"],
                     "others": json.dumps(others, sort_keys=True, default=str)})
    points = pd.DataFrame(rows, columns=["task", "dataset", "metric", "method", "value", "model",
                                         "x", "seed", "others"])
    if points.empty:
        return points.assign(series=[]), pd.DataFrame(base_rows)
    # keep groups that vary on the axis; label series by the settings that vary in the panel
    nx = points.groupby(["task", "dataset", "model", "method"])["x"].transform(
        lambda s: len({json.dumps(v, default=str) for v in s}))
    points = points[nx >= 2].copy()
    labels = []
    for _, p in points.iterrows():
        panel = points[(points["task"] == p["task"]) & (points["dataset"] == p["dataset"])]
        mine = json.loads(p["others"])
        in_panel = [json.loads(o) for o in panel["others"]]
        varying = [k for k in mine
                   if len({json.dumps(o.get(k), default=str) for o in in_panel}) > 1]
        extra = ", ".join(f"{k}={mine[k]}" for k in varying)
        labels.append(f"{p['model']} · {p['method']}" + (f" · {extra}" if extra else ""))
    points["series"] = labels
    panels = set(zip(points["task"], points["dataset"], strict=True))
    bases = pd.DataFrame(base_rows)
    if len(bases):
        keep = [(t, d) in panels for t, d in zip(bases["task"], bases["dataset"], strict=True)]
        bases = bases[keep]
    return points, bases


# --- loading ------------------------------------------------------------------------------------


def run_id_of(r: Mapping[str, Any]) -> str:
    return (f"{r['task']}/{r['dataset']}/{r['model']}/{r['method']}/{r['variant']}"
            f"/seed{r['seed']}")


def run_dir_id(path: str | Path) -> str:
    """The run id of a file inside a run directory (…/results/runs/<run id>/file)."""
    return str(Path(path).parent).split("results/runs/", 1)[-1]


def config_run_id(path: str | Path) -> str:
    """The run id of a resolved-config file: …/configs/<run id>.json, or one in a run dir."""
    p = str(path)
    if "configs/" in p:
        return p.rsplit("configs/", 1)[1].removesuffix(".json")
    return run_dir_id(p)


def load_results(metrics_paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One result record per run: the run's fields, its metrics, provenance and analysis."""
    results = []
    for path in metrics_paths:
        m = read_json(path)
        results.append({**m["run"], "metrics": m["metrics"],
                        "provenance": m.get("provenance") or {},
                        "analysis": m.get("analysis") or {}, "n": m.get("n")})
    return results


def load_curves(log_paths: Sequence[str | Path]) -> dict[str, list[dict]]:
    """Training log rows per run id (the run dir relative to results/runs)."""
    return {run_dir_id(p): read_jsonl(p) for p in log_paths}


# --- significance ---------------------------------------------------------------------------


def significance_pvalues(
    results: Sequence[dict[str, Any]],
    predictions: Mapping[str, Sequence[dict[str, Any]]],
    references: Mapping[tuple[str, str], Sequence[dict[str, Any]]],
    baseline_method: str = "sft",
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
) -> dict[tuple[RowKey, str, str], float]:
    """p-values of every non-baseline (row, metric, dataset) against its baseline row.

    predictions: run id -> predictions; references: (task, dataset) -> references. The baseline
    row is chosen as the tables choose it. A run whose recomputed score differs from its
    metrics.json value (stale predictions) is left out of the test, with a warning.
    """
    out: dict[tuple[RowKey, str, str], float] = {}
    scorers: dict[str, dict[str, Any]] = {}

    def scorers_of(r: dict[str, Any]) -> dict[str, Any]:
        rid = run_id_of(r)
        if rid not in scorers:
            refs = references.get((r["task"], r["dataset"]))
            preds = predictions.get(rid)
            sigs = {k: (v.get("signature") or "") for k, v in (r.get("metrics") or {}).items()
                    if isinstance(v, dict)}
            scorers[rid] = (example_scorers(r["task"], preds, refs, sigs)
                            if preds is not None and refs is not None else {})
        return scorers[rid]

    def reported(r: dict[str, Any], metric: str) -> float | None:
        e = (r.get("metrics") or {}).get(metric)
        return e.get("value") if isinstance(e, dict) else None

    tidy = tidy_frame(results)
    for task in dict.fromkeys(tidy["task"]):
        sub = tidy[tidy["task"] == task]
        rows = row_order(sub, baseline_method)
        base_sel = choose_baseline(rows, table_spec(task), baseline_method)
        for row in rows:
            base = baseline_row(rows, row, base_sel)
            if base is None:
                continue
            for dataset in dict.fromkeys(sub["dataset"]):
                mine, theirs = (
                    [r for r in results if r["task"] == task and r["dataset"] == dataset
                     and (r["model"], r["method"], r["variant"]) == key]
                    for key in (row, base)
                )
                for metric in SUPPORTED.get(task, ()):
                    sides = []
                    for runs in (mine, theirs):
                        ok = []
                        for r in runs:
                            s = scorers_of(r).get(metric)
                            if s is None or reported(r, metric) is None:
                                continue
                            if not consistent(s, reported(r, metric)):
                                log.warning("%s: %s recomputed %.4f != reported %s; left out of"
                                            " the significance test", run_id_of(r), metric,
                                            s.score(), reported(r, metric))
                                continue
                            ok.append(s)
                        sides.append(ok)
                    if sides[0] and sides[1] and len({s.n for s in sides[0] + sides[1]}) == 1:
                        res = paired_bootstrap(sides[0], sides[1], n_samples, seed)
                        out[(row, metric, dataset)] = res.p_value
    return out


# --- warmup overlap -----------------------------------------------------------------------------

ANALYSIS_COLUMNS = (("warmup_word_overlap", "Warmup words in reference (%)"),
                    ("warmup_exact_phrase", "Warmups that are a phrase of the reference (%)"),
                    ("warmup_empty", "Empty warmups (%)"),
                    ("warmup_no_separator", "No separator generated (%)"))


def warmup_analysis_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per warmup run: its test examples and the analysis rates of metrics.json
    (the paper reports that over 40% of warmup words occur in the reference)."""
    rows = []
    for r in results:
        analysis = r.get("analysis") or {}
        if not any(key in analysis for key, _ in ANALYSIS_COLUMNS):
            continue
        row = {k: r[k] for k in ("task", "dataset", "model", "method", "variant", "seed")}
        row["examples"] = r.get("n")
        for key, label in ANALYSIS_COLUMNS:
            entry = analysis.get(key) or {}
            row[label] = entry.get("value") if isinstance(entry, dict) else entry
        rows.append(row)
    columns = ["task", "dataset", "model", "method", "variant", "seed", "examples",
               *(label for _, label in ANALYSIS_COLUMNS)]
    return pd.DataFrame(rows, columns=columns)


def warmup_analysis_markdown(frame: pd.DataFrame) -> str:
    """The warmup analysis as a Markdown table (rates with one decimal)."""
    body = frame.copy()
    for _, label in ANALYSIS_COLUMNS:
        body[label] = [("-" if v is None or v != v else f"{v:.1f}") for v in body[label]]
    head = "# Warmup analysis\n\nPer warmup run, over its test examples (decoding).\n\n"
    table = body.to_markdown(index=False, disable_numparse=True) if len(body) else "No warmup runs."
    return head + table + "\n"



def warmup_overlaps(
    results: Sequence[dict[str, Any]],
    predictions: Mapping[str, Sequence[dict[str, Any]]],
    references: Mapping[tuple[str, str], Sequence[dict[str, Any]]],
    target_langs: Mapping[str, str | None] | None = None,
) -> dict[tuple[str, str], list[float]]:
    """Per-example overlap (%) of non-empty warmups with the reference, pooled over seeds:
    {(task, "dataset · model · method[ · variant]"): values}."""
    from repro.metrics.evaluate import align
    from repro.metrics.warmup_analysis import per_example

    out: dict[tuple[str, str], list[float]] = {}
    for r in results:
        preds = predictions.get(run_id_of(r))
        refs = references.get((r["task"], r["dataset"]))
        if not preds or refs is None or not any("warmup" in p for p in preds):
            continue
        aligned = align(list(preds), list(refs))
        rows = per_example([p.get("warmup") or "" for p in aligned], [x["target"] for x in refs],
                           (target_langs or {}).get(r["dataset"]))
        label = f"{r['dataset']} · {r['model']} · {r['method']}" + (
            "" if r["variant"] == "default" else f" · {r['variant']}")
        out.setdefault((r["task"], label), []).extend(
            100.0 * x["overlap"] for x in rows if x["overlap"] is not None)
    return out


# --- HTML pages for the report ---------------------------------------------------------------

_PAGE_STYLE = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
td.num{text-align:right}thead th{border-bottom:2px solid #444;background:#f6f6f6}
pre{background:#f6f6f6;padding:.6em;font-size:.8em;max-height:30em;overflow:auto}
details{margin:.3em 0}summary{cursor:pointer}
"""


def _page(title: str, body: list[str]) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return "" if v is None else str(v)


def runs_page(results: Sequence[dict[str, Any]], configs: Mapping[str, Any]) -> str:
    """Every run: its metrics, provenance, and resolved config (collapsed)."""
    body = ["<p>One row per run: every metric (n/a = skipped, with the reason on hover), the"
            " provenance stamped in its metrics.json, and below the resolved config each job"
            " of the run received.</p>"]
    for task in dict.fromkeys(r["task"] for r in results):
        runs = [r for r in results if r["task"] == task]
        metrics = list(dict.fromkeys(m for r in runs for m in (r.get("metrics") or {})))
        body.append(f"<h2>{html.escape(task)}</h2><table><thead><tr>"
                    + "".join(f"<th>{k}</th>" for k in RUN_KEYS[1:])
                    + "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
                    + "<th>config sha256</th><th>git commit</th></tr></thead><tbody>")
        for r in runs:
            cells = [f"<td>{html.escape(str(r[k]))}</td>" for k in RUN_KEYS[1:]]
            for m in metrics:
                e = (r.get("metrics") or {}).get(m)
                if isinstance(e, dict) and "skipped" in e:
                    cells.append(f"<td class='num' title='{html.escape(str(e['skipped']))}'>"
                                 "n/a</td>")
                else:
                    v = e.get("value") if isinstance(e, dict) else e
                    cells.append(f"<td class='num'>{html.escape(_fmt(v))}</td>")
            prov = r.get("provenance") or {}
            cells.append(f"<td><code>{html.escape(str(prov.get('config_sha256', '')))}</code></td>")
            cells.append(f"<td><code>{html.escape(str(prov.get('git_commit', ''))[:12])}"
                         "</code></td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        body.append("</tbody></table>")
    body.append("<h2>Resolved configs and provenance</h2>")
    for r in results:
        rid = run_id_of(r)
        detail = {"provenance": r.get("provenance"), "config": configs.get(rid)}
        sigs = {m: e.get("signature") for m, e in (r.get("metrics") or {}).items()
                if isinstance(e, dict) and e.get("signature")}
        if sigs:
            detail["signatures"] = sigs
        body.append(f"<details><summary><code>{html.escape(rid)}</code></summary><pre>"
                    + html.escape(json.dumps(detail, indent=2, sort_keys=True, default=str))
                    + "</pre></details>")
    return _page("Runs: metrics, provenance and config", body)


def data_page(filter_stats: Mapping[str, Mapping[str, Any]]) -> str:
    """Per dataset and split: records read, kept, and dropped per reason."""
    body = ["<p>Records per dataset and split after the filters of the config: read, kept, and"
            " dropped per reason (from each dataset's filter_stats.json).</p>"]
    for name, stats in filter_stats.items():
        splits = [s for s, v in stats.items() if isinstance(v, dict)]
        reasons = list(dict.fromkeys(k for s in splits for k in (stats[s].get("dropped") or {})))
        body.append(f"<h2>{html.escape(name)}</h2><table><thead><tr><th>split</th><th>input</th>"
                    "<th>kept</th>" + "".join(f"<th>dropped: {html.escape(x)}</th>"
                                              for x in reasons) + "</tr></thead><tbody>")
        for s in splits:
            v = stats[s]
            body.append(f"<tr><td>{html.escape(s)}</td><td class='num'>{_fmt(v.get('input'))}"
                        f"</td><td class='num'>{_fmt(v.get('kept'))}</td>" + "".join(
                            f"<td class='num'>{_fmt((v.get('dropped') or {}).get(x))}</td>"
                            for x in reasons) + "</tr>")
        body.append("</tbody></table>")
    return _page("Data: filter statistics", body)


# --- the report ---------------------------------------------------------------------------------


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
    prediction_paths: Sequence[str | Path] = (),
    reference_paths: Sequence[str | Path] = (),
    config_paths: Sequence[str | Path] = (),
    filter_stats_paths: Sequence[str | Path] = (),
    published: str | Path | None = None,
    groups: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ablations: Sequence[Mapping[str, Any]] = (),
    n_samples: int = DEFAULT_SAMPLES,
    seed: int | None = DEFAULT_SEED,
) -> list[Path]:
    """Write every table, plot and page of the report; return the paths written.

    reference_paths are results/data/<task>/<dataset>/test.jsonl; prediction, config and log
    paths lie in the run directories; `groups` (task -> group -> datasets) add to the groups
    of the published file; `ablations` are the axes to plot (see `ablation_axes`).
    """
    results = load_results(metrics_paths)
    predictions = {run_dir_id(p): read_jsonl(p) for p in prediction_paths}
    references = {(Path(p).parent.parent.name, Path(p).parent.name): read_jsonl(p)
                  for p in reference_paths}
    configs = {config_run_id(p): read_json(p) for p in config_paths}
    entries, pub_groups = load_published(published)
    all_groups = {t: {**pub_groups.get(t, {}), **(groups or {}).get(t, {})}
                  for t in {*pub_groups, *(groups or {})}}

    pvalues = (significance_pvalues(results, predictions, references, baseline, n_samples, seed)
               if n_samples > 0 else {})
    written = write_task_tables(
        results, out.tables_dir, baseline, formats=TABLE_FORMATS, groups=all_groups,
        pvalues=pvalues, published=entries, significance=describe(n_samples, seed))
    written.append(plot_main_metric(results, out.main_plot, baseline_method=baseline))
    curves = load_curves(log_paths)
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
        frame.to_csv(out.warmup_table.with_suffix(".csv"), index=False)
        written += [out.warmup_table, out.warmup_table.with_suffix(".csv")]
    if out.warmup_plot is not None:
        langs = {rid.split("/")[1]: (c.get("data") or {}).get("target_lang")
                 for rid, c in configs.items()}
        overlaps = warmup_overlaps(results, predictions, references, langs)
        written.append(plot_warmup_overlap(overlaps, out.warmup_plot))
    if out.runs_page is not None:
        write_text(out.runs_page, runs_page(results, configs))
        written.append(out.runs_page)
    if out.data_page is not None:
        stats = {f"{Path(p).parent.parent.name}/{Path(p).parent.name}": read_json(p)
                 for p in filter_stats_paths}
        write_text(out.data_page, data_page(stats))
        written.append(out.data_page)
    for p in written:
        print(p)
    return written

