"""Paper-style result tables: tidy per-run rows, and per task a grid of cells laid out after the
paper table it reproduces.

`tidy_frame` turns result records (one per run) into one row per (run, metric); `task_table`
builds a task's `TaskTable` in steps: the metric columns present (`resolve_metrics`), the rows
and the baseline they are compared with (`table_rows`), the average columns
(`average_columns`), the seed statistics (`seed_stats`), the cells (`table_cells`), the
footnotes on metric keys and the signatures, then the published numbers beside them
(repro.report.published). Renderers (repro.report.render) only lay the cells out.

The layout of each task's table follows its paper table (`TABLE_SPECS`): which metrics, in which
order, whether columns run metric-major (translation: per metric the 8 directions and their
average) or dataset-major (co-supervision: per dataset correctness, retrieval, grounding, then
in-domain and out-of-domain averages), and which method is the baseline of the gains.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from repro.report.cells import Cell, ColKey, PubCell, RowKey, format_cell
from repro.report.published import Ours, Published, place_published
from repro.report.significance import ALPHA, MARK
from repro.runs import FIELDS as RUN_KEYS
from repro.tasks import TASK_METRICS, metric_name, task_name

PROVENANCE_COLUMNS: tuple[str, ...] = ("config_sha256", "git_commit")
TIDY_COLUMNS: tuple[str, ...] = (
    *RUN_KEYS, "metric", "value", "skipped_reason", "not_applicable", "alias_of", "signature",
    *PROVENANCE_COLUMNS,
)
"""One row per (run, metric). not_applicable: skipped by design (not a metric of the dataset),
never a failure; alias_of: the metric an alias entry (knowledge: correctness, retrieval,
grounding) was computed as, its `metric` field in metrics.json ("none": not applicable)."""
TIDY_TYPES: dict[str, str] = {"seed": "int64", "value": "float64", "not_applicable": "bool"}
ROW_KEYS: tuple[str, ...] = ("model", "method", "variant")
AVG = "Avg"


# --- table specs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """A metric column: its label and the metric keys that fill it (the first a run has wins)."""

    label: str
    candidates: tuple[str, ...]
    in_paper: bool = True  # False: our extra column, left out of the published "*" averages
    note: str = ""  # the footnote of the column (else one naming the metric of each dataset)


@dataclass(frozen=True)
class TableSpec:
    """The layout of one task's table, after the paper table it reproduces."""

    task: str
    title: str
    metrics: tuple[MetricSpec, ...]
    by_dataset: bool = False  # columns: per dataset its metrics (else per metric its datasets)
    panels: bool = False  # render one panel per metric (rows repeated), as the paper does
    md_panels: bool = False  # the same in Markdown only (LaTeX and HTML keep the wide table)
    baselines: tuple[str, ...] = ()  # "method" or "method/variant", tried before the default
    row_order: tuple[str, ...] = ()  # selectors: rows of a model in this order, others after
    group_order: tuple[str, ...] = ()  # average columns shown first, in this order
    extra_metrics: bool = True  # also show metrics the spec does not name (the csv has all)


def _m(*keys: str, label: str | None = None, in_paper: bool = True, note: str = ""
       ) -> MetricSpec:
    return MetricSpec(label or metric_name(keys[0]), tuple(keys), in_paper, note)


TABLE_SPECS: dict[str, TableSpec] = {
    "translation": TableSpec(
        "translation",
        "Translation: methods per direction",
        (_m("bleu"), _m("comet"), _m("chrf")),
        panels=True,
    ),
    "summarization": TableSpec(
        "summarization",
        "Summarization",
        (_m("rouge1"), _m("rouge2"), _m("rougeL"), _m("bertscore")),
    ),
    "multiple_choice": TableSpec(
        "multiple_choice",
        "Multiple choice",
        (_m("macro_f1"), _m("accuracy")),
    ),
    "knowledge": TableSpec(
        "knowledge",
        "Information seeking",
        (
            _m("correctness", "answer_em", "str_em", "claims_nli", "answer_in_output",
               "accuracy", "exact_match", label="Correctness"),
            _m("retrieval", "r_precision", "answer_in_retrieved", "support_em", "support_exist",
               label="Retrieval"),
            _m("grounding", "citation_rec", label="Grounding"),
            _m("r_precision", label="R-precision (not in paper)", in_paper=False,
               note="KILT's R-precision of the retrieved pages (`r_precision`), a secondary "
                    "column of ours; the paper's retrieval score is the Retrieval column"),
        ),
        by_dataset=True,
        md_panels=True,  # 4 metrics x (datasets + averages) columns: too wide for Markdown
        extra_metrics=False,
        # the paper's baseline is separate supervision; ntp and nsp are ablations of ours
        baselines=("cosup/separate", "cosup/ntp", "ntp"),
        row_order=("cosup/separate", "cosup/ntp+nsp", "ntp+nsp", "cosup/ntp", "ntp",
                   "cosup/nsp", "nsp"),
        group_order=("In-domain", "Out-of-domain"),
    ),
}


def table_spec(task: str, baselines: Mapping[str, str] | None = None,
               titles: Mapping[str, str] | None = None) -> TableSpec:
    """The spec of a task's table; unknown tasks get one column per metric, in record order.
    `baselines` (task -> "method" or "method/variant", the config's report.baselines) is
    tried before the spec's own baselines; `titles` (task -> caption, the config's
    report.titles) replaces the neutral title (a paper config names its paper table there)."""
    spec = TABLE_SPECS.get(task, TableSpec(task, f"{task_name(task)} results", ()))
    chosen = (baselines or {}).get(task)
    if chosen:
        spec = replace(spec, baselines=(chosen, *spec.baselines))
    title = (titles or {}).get(task)
    return replace(spec, title=title) if title else spec


# --- tidy per-run rows ----------------------------------------------------------------------


def _metric_entry(entry: Any) -> dict[str, Any]:
    """value, skipped_reason, not_applicable, alias_of and signature of one metrics.json entry
    (a dict or a bare number); value NaN when skipped."""
    if not isinstance(entry, dict):
        entry = {"value": entry}
    skipped = "skipped" in entry
    value = entry.get("value")
    return {"value": math.nan if skipped or value is None else float(value),
            "skipped_reason": (str(entry["skipped"]) or "skipped") if skipped else "",
            "not_applicable": skipped and bool(entry.get("not_applicable")),
            "alias_of": str(entry.get("metric") or ""),
            "signature": str(entry.get("signature") or "")}


def tidy_frame(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (run, metric) with columns TIDY_COLUMNS; value is NaN for a skipped metric.

    Metrics come in the task's canonical order, unknown ones after in record order. A record's
    optional "provenance" ({config_sha256, git_commit, ...}) fills the provenance columns.
    Raises ValueError on a record without a run key or on two records for the same run.
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for i, r in enumerate(results):
        missing = [k for k in RUN_KEYS if k not in r]
        if missing:
            raise ValueError(f"result record {i} lacks {', '.join(missing)}")
        run = tuple(r[k] for k in RUN_KEYS)
        if run in seen:
            raise ValueError(f"duplicate result for run {dict(zip(RUN_KEYS, run, strict=True))}")
        seen.add(run)
        metrics: dict[str, Any] = r.get("metrics") or {}
        prov = r.get("provenance") or {}
        canonical = TASK_METRICS.get(r["task"], ())
        order = [m for m in canonical if m in metrics] + [m for m in metrics if m not in canonical]
        for m in order:
            rows.append(
                {
                    **{k: (int(r[k]) if k == "seed" else str(r[k])) for k in RUN_KEYS},
                    "metric": m,
                    **_metric_entry(metrics[m]),
                    **{k: str(prov.get(k) or "") for k in PROVENANCE_COLUMNS},
                }
            )
    df = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return df.astype(TIDY_TYPES)


def read_tidy_csv(path: str | Path) -> pd.DataFrame:
    """Read a tidy CSV written by `write_task_tables` back into the `tidy_frame` layout."""
    text_cols = [c for c in TIDY_COLUMNS if c not in TIDY_TYPES]
    df = pd.read_csv(
        path,
        dtype={c: str for c in text_cols},
        keep_default_na=False,
        na_values={"value": [""]},
    )
    return df.astype(TIDY_TYPES)[list(TIDY_COLUMNS)]


# --- the table ------------------------------------------------------------------------------


@dataclass
class TaskTable:
    """A task's table: formatted `frame` plus the cells, notes and provenance it was made from.

    `frame` has a (model, method, variant) row index and (metric label, dataset or group)
    columns; `footnotes[i - 1]` is the text of footnote marker [i]. `published[row]` holds the
    published cells shown in a row under `row`.
    """

    task: str
    frame: pd.DataFrame
    footnotes: list[str]
    cells: dict[tuple[RowKey, ColKey], Cell]
    rows: list[RowKey]
    columns: list[ColKey]
    baseline_method: str
    seeds: list[int] = field(default_factory=list)
    signatures: dict[str, list[str]] = field(default_factory=dict)  # metric label -> signatures
    spec: TableSpec | None = None
    datasets: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)  # average columns -> datasets
    metric_keys: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    label_notes: dict[str, int] = field(default_factory=dict)  # label -> its footnote number
    published: dict[RowKey, dict[ColKey, PubCell]] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # lines under the table (published "*")
    provenance: list[str] = field(default_factory=list)
    significance: str = ""  # the footnote explaining the marks ("" when nothing was tested)

    @property
    def title(self) -> str:
        return self.spec.title if self.spec else f"{task_name(self.task)} results"

    def formatted(self, formatter: Callable[[Cell], str] = format_cell) -> pd.DataFrame:
        """The grid with cells rendered by `formatter`."""
        data = [[formatter(self.cells[(r, c)]) for c in self.columns] for r in self.rows]
        index = pd.MultiIndex.from_tuples(self.rows, names=list(ROW_KEYS))
        columns = pd.MultiIndex.from_tuples(self.columns, names=["metric", "dataset"])
        return pd.DataFrame(data, index=index, columns=columns)

    def panel_columns(self, markdown: bool = False) -> list[tuple[str, list[ColKey]]]:
        """(panel title, columns) pairs: one per metric label if the spec asks for panels
        (`md_panels`: in Markdown only), else one untitled panel of every column."""
        spec = self.spec
        if not (spec and (spec.panels or (markdown and spec.md_panels))):
            return [("", list(self.columns))]
        labels = _unique(c[0] for c in self.columns)
        return [(lab, [c for c in self.columns if c[0] == lab]) for lab in labels]

    def notes_text(self) -> str:
        """The explanation of the cell notation."""
        seeds = ", ".join(str(s) for s in self.seeds)
        groups = ", ".join(g for g in self.groups if g != AVG)
        text = (
            f"Mean over seeds ({seeds}), ± sample standard deviation (ddof=1) when more than one"
            f" seed; (+x.xx) = gain over `{self.baseline_method}` of the same model (same variant"
            " when there is one); Avg = mean over datasets"
        )
        if groups:
            text += f" ({groups}: over the datasets of that group)"
        text += (", leaving out datasets where the metric does not apply; - = no run;"
                 " n/a = not a metric of this dataset (by design, not a failure; the footnote"
                 " says why); skipped = could not be computed (the footnote says why)."
                 " Scores on 0-100.")
        if self.published:
            text += (
                " Rows `published`: the published number and (published gain); after Δ our"
                " number minus the published one (and our gain minus the published gain)."
            )
        return text


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _footnote(footnotes: list[str], text: str) -> int:
    if text not in footnotes:
        footnotes.append(text)
    return footnotes.index(text) + 1


# --- rows and the baseline they are compared with ----------------------------------------------


def row_order(tidy: pd.DataFrame, baseline_method: str = "sft") -> list[RowKey]:
    """(model, method, variant) keys: models in order of appearance, each with its baseline
    method's rows first, then its other rows in order of appearance."""
    run_rows = _unique(zip(tidy["model"], tidy["method"], tidy["variant"], strict=True))
    return [
        r
        for model in _unique(r[0] for r in run_rows)
        for base_first in (True, False)
        for r in run_rows
        if r[0] == model and (r[1] == baseline_method) == base_first
    ]


def matches(row: RowKey, selector: str) -> bool:
    """Does a row match "method" or "method/variant"?"""
    method, _, variant = selector.partition("/")
    return row[1] == method and (not variant or row[2] == variant)


def choose_baseline(rows: Sequence[RowKey], spec: TableSpec, default: str) -> str:
    """The first of the spec's baselines (then `default`) that some row matches."""
    for sel in (*spec.baselines, default):
        if any(matches(r, sel) for r in rows):
            return sel
    return default


def baseline_row(rows: Sequence[RowKey], row: RowKey, selector: str) -> RowKey | None:
    """The baseline row of `row`: same model, matching `selector`, same variant if there is one,
    else the first such row; None for a baseline row itself or when the model has none."""
    if matches(row, selector):
        return None
    cands = [r for r in rows if r[0] == row[0] and matches(r, selector)]
    same = [r for r in cands if r[2] == row[2]]
    return (same or cands or [None])[0]


def spec_row_order(rows: Sequence[RowKey], spec: TableSpec, baseline: str) -> list[RowKey]:
    """Rows of each model (models in their order): the baseline first, then the spec's
    `row_order` selectors in turn, then the rest in their order."""
    def rank(row: RowKey) -> int:
        if matches(row, baseline):
            return -1
        return next((i for i, sel in enumerate(spec.row_order) if matches(row, sel)),
                    len(spec.row_order))

    if not spec.row_order:
        return list(rows)
    models = _unique(r[0] for r in rows)
    return sorted(rows, key=lambda r: (models.index(r[0]), rank(r)))


def table_rows(tidy: pd.DataFrame, spec: TableSpec, baseline_method: str
               ) -> tuple[str, list[RowKey]]:
    """(baseline selector, rows in table order) of one task's runs: per model (order of
    appearance) the baseline rows first (the spec's first baseline present, else
    `baseline_method`), then the spec's row order, then the others in order of appearance."""
    baseline = choose_baseline(row_order(tidy, baseline_method), spec, baseline_method)
    rows = row_order(tidy, baseline.partition("/")[0])
    if "/" in baseline:  # a method/variant baseline: that row first within its model
        rows = [r for m in _unique(r[0] for r in rows) for first in (True, False)
                for r in rows if r[0] == m and matches(r, baseline) == first]
    return baseline, spec_row_order(rows, spec, baseline)


def baseline_pairs(results: Sequence[dict[str, Any]], baseline_method: str = "sft",
                   baselines: Mapping[str, str] | None = None
                   ) -> dict[tuple[str, RowKey], RowKey]:
    """(task, row) -> the baseline row its gains and significance marks are measured against,
    for every row of every task's table that has one."""
    tidy = tidy_frame(results)
    pairs: dict[tuple[str, RowKey], RowKey] = {}
    for task in _unique(tidy["task"]):
        baseline, rows = table_rows(tidy[tidy["task"] == task], table_spec(task, baselines),
                                    baseline_method)
        for row in rows:
            base = baseline_row(rows, row, baseline)
            if base is not None:
                pairs[(task, row)] = base
    return pairs


# --- columns --------------------------------------------------------------------------------

Chosen = dict[tuple[str, str, str, str, str], str]  # (model, method, variant, dataset, label)


def resolve_metrics(tidy: pd.DataFrame, spec: TableSpec) -> tuple[list[MetricSpec], Chosen]:
    """The metric columns with data (spec order, then unclaimed metrics in record order), and
    which metric key fills each column label per (model, method, variant, dataset): the first
    of the label's candidates the runs have (a metric key fills one column only).
    """
    present = _unique(tidy["metric"])
    chosen: Chosen = {}
    used: set[str] = set()
    specs: list[MetricSpec] = []
    groups = tidy.groupby(["model", "method", "variant", "dataset"], sort=False)["metric"]
    claimed: set[tuple[Any, ...]] = set()  # (run group, metric): a metric fills one column
    for ms in spec.metrics:
        hit = False
        for key, metrics in groups:
            have = {m for m in metrics if (*key, m) not in claimed}
            pick = next((c for c in ms.candidates if c in have), None)
            if pick:
                chosen[(*key, ms.label)] = pick  # type: ignore[index]
                claimed.add((*key, pick))
                used.add(pick)
                hit = True
        if hit:
            specs.append(ms)
    for m in present if spec.extra_metrics else ():
        if m not in used:
            ms = _m(m)
            specs.append(ms)
            for key, metrics in groups:
                if m in set(metrics):
                    chosen[(*key, ms.label)] = m  # type: ignore[index]
    return specs, chosen


def average_columns(datasets: Sequence[str], groups: Mapping[str, Sequence[str]] | None,
                    spec: TableSpec) -> dict[str, list[str]]:
    """Average columns -> their datasets: one per group (the spec's `group_order` first) with
    datasets in the table, then Avg over all datasets (only with more than one)."""
    groups = groups or {}
    named = [(g, groups[g]) for g in spec.group_order if g in groups]
    named += [(g, m) for g, m in groups.items() if g not in spec.group_order]
    averages: dict[str, list[str]] = {}
    for name, members in named:
        present = [d for d in datasets if d in set(members)]
        if present and name != AVG:
            averages[name] = present
    if len(datasets) > 1:
        averages[AVG] = list(datasets)
    return averages


def table_columns(specs: Sequence[MetricSpec], names: Sequence[str], by_dataset: bool
                  ) -> list[ColKey]:
    """(label, dataset or average) columns: per dataset its metrics, or per metric its
    datasets."""
    if by_dataset:
        return [(ms.label, d) for d in names for ms in specs]
    return [(ms.label, d) for ms in specs for d in names]


# --- cells ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedStats:
    """One row's metric on one dataset over its seeds."""

    mean: float | None
    std: float | None  # sample std (ddof=1), None with fewer than two values
    n: int  # seeds with a value
    reasons: tuple[str, ...]  # why the metric was skipped, where it was
    not_applicable: bool = False  # no value, and every seed skipped it by design


Stats = dict[tuple[RowKey, str, str], SeedStats]  # (row, label, dataset)


def seed_stats(tidy: pd.DataFrame, specs: Sequence[MetricSpec], chosen: Chosen) -> Stats:
    """Mean, sample std and count over seeds, and skip reasons, per (row, label, dataset)."""
    stats: Stats = {}
    for (model, method, variant, dataset), g in tidy.groupby(
        ["model", "method", "variant", "dataset"], sort=False
    ):
        for ms in specs:
            key = chosen.get((model, method, variant, dataset, ms.label))
            if key is None:
                continue
            sub = g[g["metric"] == key]
            vals = sub["value"].dropna()
            skipped = sub[sub["skipped_reason"] != ""]
            na = not len(vals) and len(sub) > 0 and bool(sub["not_applicable"].all())
            stats[((model, method, variant), ms.label, dataset)] = SeedStats(
                float(vals.mean()) if len(vals) else None,
                float(vals.std(ddof=1)) if len(vals) > 1 else None,
                len(vals),
                tuple(_unique(f"not applicable: {why}" if n_a else why for why, n_a in zip(
                    skipped["skipped_reason"], skipped["not_applicable"], strict=True))),
                na,
            )
    return stats


def not_applicable_in(stats: Stats, averages: Mapping[str, Sequence[str]]
                      ) -> Callable[[RowKey | None, str, str], bool]:
    """na(row, label, column): does the metric not apply there? True on a dataset where every
    seed skipped it by design, and on an average column all of whose datasets are such."""
    def na(row: RowKey | None, label: str, col: str) -> bool:
        if row is None:
            return False
        cols = averages.get(col, [col])
        return all((s := stats.get((row, label, d))) is not None and s.not_applicable
                   for d in cols)

    return na


def column_mean(stats: Stats, averages: Mapping[str, Sequence[str]]
                ) -> Callable[[RowKey | None, str, str], float | None]:
    """mean(row, label, column): the seed mean on a dataset, or for an average column the mean
    of its datasets' means, leaving out datasets where the metric does not apply, when every
    other one has a mean (else None)."""
    na = not_applicable_in(stats, averages)

    def mean(row: RowKey | None, label: str, col: str) -> float | None:
        if row is None:
            return None
        if col not in averages:
            s = stats.get((row, label, col))
            return s.mean if s else None
        vals = [s.mean if (s := stats.get((row, label, d))) else None for d in averages[col]
                if not na(row, label, d)]
        known = [v for v in vals if v is not None]
        return sum(known) / len(vals) if vals and len(known) == len(vals) else None

    return mean


def table_cells(
    rows: Sequence[RowKey],
    columns: Sequence[ColKey],
    baseline: str,
    stats: Stats,
    averages: Mapping[str, Sequence[str]],
    chosen: Chosen,
    pvalues: Mapping[tuple[RowKey, str, str], float],
    footnotes: list[str],
) -> dict[tuple[RowKey, ColKey], Cell]:
    """Every cell, row by row: mean (± std), gain over the row's baseline row, the
    significance mark where p < ALPHA (datasets only, not averages), skip-reason footnotes
    (numbered in reading order, appended to `footnotes`)."""
    mean = column_mean(stats, averages)
    na = not_applicable_in(stats, averages)
    cells: dict[tuple[RowKey, ColKey], Cell] = {}
    for row in rows:
        base = baseline_row(rows, row, baseline)
        for label, col in columns:
            value = mean(row, label, col)
            if col in averages:
                s = SeedStats(value, None, 1 if value is not None else 0, (),
                              na(row, label, col))
            else:
                s = stats.get((row, label, col), SeedStats(None, None, 0, ()))
            notes = tuple(_footnote(footnotes, reason) for reason in s.reasons)
            b = mean(base, label, col)
            gain = value - b if value is not None and b is not None else None
            key = chosen.get((*row, col, label))
            p = pvalues.get((row, key, col)) if key and col not in averages else None
            marks = MARK if p is not None and p < ALPHA and value is not None else ""
            cells[(row, (label, col))] = Cell(value, s.std, s.n, gain, notes, marks, p,
                                              s.not_applicable)
    return cells


NOT_APPLICABLE = "none"  # the `metric` of an alias entry that does not apply (ALCE retrieval)


def computed_as(tidy: pd.DataFrame, chosen: Chosen) -> dict[tuple[str, str], list[str]]:
    """(label, dataset) -> the metrics its cells were computed as: the chosen key's `metric`
    field in metrics.json (aliases: correctness, retrieval, grounding), else the key itself."""
    alias = {(row.model, row.method, row.variant, row.dataset, row.metric): row.alias_of
             for row in tidy.itertuples() if row.alias_of}
    out: dict[tuple[str, str], list[str]] = {}
    for (model, method, variant, d, label), key in chosen.items():
        kind = alias.get((model, method, variant, d, key), key)
        if kind not in out.setdefault((label, d), []):
            out[(label, d)].append(kind)
    return out


def metric_key_notes(specs: Sequence[MetricSpec], chosen: Chosen, footnotes: list[str],
                     tidy: pd.DataFrame, datasets: Sequence[str]
                     ) -> tuple[dict[str, list[tuple[str, list[str]]]], dict[str, int]]:
    """(metric -> datasets per label, label -> footnote number). A label gets a footnote
    naming the metric of each dataset (from the runs' metrics.json, "Correctness: STR-EM
    `str_em` (alce_asqa); ...") unless one metric of the label's own name fills it everywhere;
    a spec's `note` replaces it."""
    kinds = computed_as(tidy, chosen)
    metric_keys: dict[str, list[tuple[str, list[str]]]] = {}
    notes: dict[str, int] = {}
    for ms in specs:
        by_key: dict[str, list[str]] = {}
        for d in datasets:
            for kind in kinds.get((ms.label, d), []):
                by_key.setdefault(kind, []).append(d)
        metric_keys[ms.label] = list(by_key.items())
        if ms.note:
            notes[ms.label] = _footnote(footnotes, f"{ms.label}: {ms.note}")
        elif any(metric_name(k) != ms.label for k in by_key):
            parts = [("not applicable" if k == NOT_APPLICABLE else f"{metric_name(k)} `{k}`")
                     + (" (every dataset)" if len(ds) == len(datasets) > 1
                        else f" ({', '.join(ds)})") for k, ds in by_key.items()]
            notes[ms.label] = _footnote(footnotes, f"{ms.label}: " + "; ".join(parts))
    return metric_keys, notes


def signatures_of(tidy: pd.DataFrame, specs: Sequence[MetricSpec], chosen: Chosen
                  ) -> dict[str, list[str]]:
    """The distinct metric signatures behind each label (sacrebleu's, ROUGE's, ...)."""
    signatures: dict[str, list[str]] = {}
    for ms in specs:
        keys = {k for (_, _, _, _, lab), k in chosen.items() if lab == ms.label}
        sigs = _unique(s for s in tidy.loc[tidy["metric"].isin(keys), "signature"] if s)
        if sigs:
            signatures[ms.label] = sigs
    return signatures


def provenance_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """Provenance of the runs behind a table: git commit(s), config hashes, package versions."""
    provs = [r.get("provenance") or {} for r in results]
    commits = _unique(p.get("git_commit") for p in provs if p.get("git_commit"))
    hashes = sorted(p.get("config_sha256") for p in provs if p.get("config_sha256"))
    versions: dict[str, list[str]] = {}
    for p in provs:
        for pkg, v in (p.get("versions") or {}).items():
            versions.setdefault(pkg, [])
            if v not in versions[pkg]:
                versions[pkg].append(v)
    lines = []
    if commits:
        lines.append("git commit: " + ", ".join(f"`{c}`" for c in commits))
    if hashes:
        combined = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]
        lines.append(
            f"config sha256: `{combined}` (hash of the {len(hashes)} runs' config hashes;"
            " per run in column config_sha256 of the CSV)"
        )
    if versions:
        lines.append("versions: " + ", ".join(f"{k} {'/'.join(v)}" for k, v in versions.items()))
    return lines


def task_table(
    results: Sequence[dict[str, Any]],
    task: str,
    baseline_method: str = "sft",
    *,
    spec: TableSpec | None = None,
    baselines: Mapping[str, str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    pvalues: Mapping[tuple[RowKey, str, str], float] | None = None,
    published: Sequence[Published] = (),
    significance: str = "",
    titles: Mapping[str, str] | None = None,
) -> TaskTable:
    """Build the table of one task.

    Cells: mean over seeds (± sample std), gain over the baseline row, a significance mark
    where `pvalues[(row, metric key, dataset)] < 0.05`. Rows: see `table_rows`; a row's
    baseline is the same model's baseline row with the same variant, else its first baseline
    row. Average columns: see `average_columns`; an average is the mean of the per-dataset
    means when every dataset of it has one, else "-". `published` entries become `published`
    rows (or lines under the table).
    """
    spec = spec or table_spec(task, baselines, titles)
    tidy = tidy_frame(results)
    tidy = tidy[tidy["task"] == task]
    datasets = _unique(tidy["dataset"])
    specs, chosen = resolve_metrics(tidy, spec)
    baseline, rows = table_rows(tidy, spec, baseline_method)
    averages = average_columns(datasets, groups, spec)
    columns = table_columns(specs, [*datasets, *averages], spec.by_dataset)
    stats = seed_stats(tidy, specs, chosen)
    footnotes: list[str] = []
    metric_keys, label_notes = metric_key_notes(specs, chosen, footnotes, tidy, datasets)
    cells = table_cells(rows, columns, baseline, stats, averages, chosen, pvalues or {},
                        footnotes)
    table = TaskTable(
        task=task,
        frame=pd.DataFrame(),
        footnotes=footnotes,
        cells=cells,
        rows=rows,
        columns=columns,
        baseline_method=baseline,
        seeds=sorted(_unique(tidy["seed"].tolist())),
        signatures=signatures_of(tidy, specs, chosen),
        spec=spec,
        datasets=list(datasets),
        groups=averages,
        metric_keys=metric_keys,
        label_notes=label_notes,
        provenance=provenance_lines([r for r in results if r.get("task") == task]),
        significance=significance if any(c.p_value is not None for c in cells.values()) else "",
    )
    ours = Ours(
        rows=rows, datasets=datasets, groups=averages,
        label_of={c: ms.label for ms in specs for c in (*ms.candidates, ms.label)},
        paper_labels=[ms.label for ms in specs if ms.in_paper], baseline=baseline,
        mean=column_mean(stats, averages),
        not_applicable=not_applicable_in(stats, averages),
        baseline_row=lambda row, sel: baseline_row(rows, row, sel),
    )
    placed = place_published([p for p in published if p.task == task], ours,
                             lambda text: _footnote(footnotes, text))
    table.published, table.summary = placed.cells, placed.lines
    table.frame = table.formatted()
    return table
