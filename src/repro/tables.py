"""Paper-style result tables: tidy rows, per-task tables with published numbers, MD/CSV output.

A table is built in two steps so every output format shares it: `task_table` computes a grid of
`Cell`s (seed statistics, gain over the baseline, significance marks, footnote numbers) and, for
rows the papers report on, a grid of `PubCell`s (published number, published gain, and our
difference to them); `format_cell` / `format_published` are the only places that turn them into
text. Renderers (`to_markdown` here, `repro.latex.to_latex`, `to_html`) only lay cells out.

The layout of each task's table follows its paper table (`TABLE_SPECS`): which metrics, in which
order, whether columns run metric-major (translation: per metric the 8 directions and their
average) or dataset-major (co-supervision: per dataset correctness, retrieval, grounding, then
in-domain and out-of-domain averages), and which method is the baseline of the gains.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from repro.io import atomic_path, write_text
from repro.significance import ALPHA, MARK

RUN_KEYS: tuple[str, ...] = ("task", "dataset", "model", "method", "variant", "seed")
PROVENANCE_COLUMNS: tuple[str, ...] = ("config_sha256", "git_commit")
TIDY_COLUMNS: tuple[str, ...] = (
    *RUN_KEYS, "metric", "value", "skipped_reason", "signature", *PROVENANCE_COLUMNS,
)
ROW_KEYS: tuple[str, ...] = ("model", "method", "variant")

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "translation": ("bleu", "chrf", "comet"),
    "summarization": ("rouge1", "rouge2", "rougeL", "bertscore"),
    "multiple_choice": ("accuracy", "macro_f1"),
    "knowledge": (
        "correctness", "exact_match", "f1", "accuracy", "rougeL", "answer_in_output",
        "retrieval", "r_precision", "recall_at_5", "answer_in_retrieved",
        "kilt_exact_match", "kilt_f1", "kilt_accuracy", "kilt_rougeL", "grounding",
    ),
}
MAIN_METRIC: dict[str, str] = {
    "translation": "bleu",
    "summarization": "rougeL",
    "multiple_choice": "accuracy",
    "knowledge": "correctness",
}
METRIC_NAMES: dict[str, str] = {
    "bleu": "BLEU",
    "chrf": "chrF++",
    "comet": "COMET",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bertscore": "BERTScore",
    "accuracy": "Accuracy",
    "macro_f1": "Macro-F1",
    "exact_match": "EM",
    "f1": "F1",
    "correctness": "Correctness",
    "retrieval": "Retrieval",
    "grounding": "Grounding",
    "answer_in_output": "Answer in output",
    "answer_in_retrieved": "Answer in retrieved",
    "r_precision": "R-precision",
    "recall_at_5": "Recall@5",
    "kilt_exact_match": "KILT-EM",
    "kilt_f1": "KILT-F1",
    "kilt_accuracy": "KILT-AC",
    "kilt_rougeL": "KILT-RL",
}
TASK_NAMES: dict[str, str] = {
    "translation": "Translation",
    "summarization": "Summarization",
    "multiple_choice": "Multiple choice",
    "knowledge": "Knowledge",
}
AVG = "Avg"

RowKey = tuple[str, str, str]  # (model, method, variant)
ColKey = tuple[str, str]  # (metric label, dataset or group name)


def metric_name(metric: str) -> str:
    """Display name of a metric key (the key itself when unknown)."""
    return METRIC_NAMES.get(metric, metric)


def task_name(task: str) -> str:
    """Display name of a task key."""
    return TASK_NAMES.get(task, task.replace("_", " ").capitalize())


# --- table specs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    """A metric column: its label and the metric keys that fill it (the first a run has wins)."""

    label: str
    candidates: tuple[str, ...]
    in_paper: bool = True  # False: our extra column, left out of the published "*" averages


@dataclass(frozen=True)
class TableSpec:
    """The layout of one task's table, after the paper table it reproduces."""

    task: str
    title: str
    metrics: tuple[MetricSpec, ...]
    by_dataset: bool = False  # columns: per dataset its metrics (else per metric its datasets)
    panels: bool = False  # render one panel per metric (rows repeated), as the paper does
    baselines: tuple[str, ...] = ()  # "method" or "method/variant", tried before the default
    row_order: tuple[str, ...] = ()  # selectors: rows of a model in this order, others after
    group_order: tuple[str, ...] = ()  # average columns shown first, in this order
    extra_metrics: bool = True  # also show metrics the spec does not name (the csv has all)


def _m(*keys: str, label: str | None = None, in_paper: bool = True) -> MetricSpec:
    return MetricSpec(label or metric_name(keys[0]), tuple(keys), in_paper)


TABLE_SPECS: dict[str, TableSpec] = {
    "translation": TableSpec(
        "translation",
        "Translation: SFT vs warmup per direction (Warmup Generations, mT5-base table)",
        (_m("bleu"), _m("comet"), _m("chrf")),
        panels=True,
    ),
    "summarization": TableSpec(
        "summarization",
        "Summarization (Warmup Generations, XSum table)",
        (_m("rouge1"), _m("rouge2"), _m("rougeL"), _m("bertscore")),
    ),
    "multiple_choice": TableSpec(
        "multiple_choice",
        "Logical reasoning, multiple choice (Warmup Generations, LogiQA 2.0 table)",
        (_m("macro_f1"), _m("accuracy")),
    ),
    "knowledge": TableSpec(
        "knowledge",
        "Information seeking (token-sequence co-supervision main table)",
        (
            _m("correctness", "answer_em", "str_em", "claims_nli", "answer_in_output",
               "accuracy", "exact_match", label="Correctness"),
            _m("retrieval", "r_precision", "answer_in_retrieved", "support_em", "support_exist",
               label="Retrieval"),
            _m("grounding", "citation_rec", label="Grounding"),
            _m("r_precision", label="R-precision", in_paper=False),
        ),
        by_dataset=True,
        extra_metrics=False,
        baselines=("ntp", "cosup/ntp"),
        row_order=("ntp", "cosup/ntp", "nsp", "cosup/nsp", "ntp+nsp", "cosup/ntp+nsp"),
        group_order=("In-domain", "Out-of-domain"),
    ),
}


def table_spec(task: str) -> TableSpec:
    """The spec of a task's table; unknown tasks get one column per metric, in record order."""
    return TABLE_SPECS.get(task, TableSpec(task, f"{task_name(task)} results", ()))


# --- tidy per-run rows ----------------------------------------------------------------------


def _metric_entry(entry: Any) -> tuple[float, str, str]:
    """(value, skipped_reason, signature) of one metrics.json entry (a dict or a bare number)."""
    if isinstance(entry, dict):
        if "skipped" in entry:
            return math.nan, str(entry["skipped"]) or "skipped", str(entry.get("signature") or "")
        value = entry.get("value")
        signature = str(entry.get("signature") or "")
    else:
        value, signature = entry, ""
    return (math.nan if value is None else float(value)), "", signature


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
            value, reason, signature = _metric_entry(metrics[m])
            rows.append(
                {
                    **{k: (int(r[k]) if k == "seed" else str(r[k])) for k in RUN_KEYS},
                    "metric": m,
                    "value": value,
                    "skipped_reason": reason,
                    "signature": signature,
                    **{k: str(prov.get(k) or "") for k in PROVENANCE_COLUMNS},
                }
            )
    df = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return df.astype({"seed": "int64", "value": "float64"})


def read_tidy_csv(path: str | Path) -> pd.DataFrame:
    """Read a tidy CSV written by `write_task_tables` back into the `tidy_frame` layout."""
    text_cols = [c for c in TIDY_COLUMNS if c not in ("seed", "value")]
    df = pd.read_csv(
        path,
        dtype={c: str for c in text_cols},
        keep_default_na=False,
        na_values={"value": [""]},
    )
    return df.astype({"seed": "int64", "value": "float64"})[list(TIDY_COLUMNS)]


# --- published numbers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """One published number, mapped to the ids of our config.

    `value` is an absolute score, `gain` a difference over `baselines` (the mean over them when
    several). The column is `dataset`, or the average over `datasets` (matched to our average
    column over exactly those datasets), or the named `group`. metric "*" means the mean over
    the table's metric columns (shown as a line under the table). `variant` None = any variant.
    """

    task: str
    model: str
    method: str
    metric: str
    source: str
    dataset: str | None = None
    datasets: tuple[str, ...] = ()
    group: str | None = None
    variant: str | None = None
    value: float | None = None
    gain: float | None = None
    baselines: tuple[str, ...] = ()
    note: str = ""
    paper: str = ""


def load_published(path: str | Path | None) -> tuple[list[Published], dict[str, dict[str, list]]]:
    """Read published.yaml: (entries mapped to our ids, dataset groups per task).

    The file's `map` translates the paper's dataset and model names to our config ids; names
    not in the map are taken as ids. Raises ValueError naming the entry at fault.
    """
    if not path:
        return [], {}
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    mapping = doc.get("map") or {}
    dmap: dict[str, str] = mapping.get("datasets") or {}
    mmap: dict[str, str] = mapping.get("models") or {}

    def ds(name: str) -> str:
        return str(dmap.get(name, name))

    entries: list[Published] = []
    for paper, pdoc in (doc.get("papers") or {}).items():
        for task, items in ((pdoc or {}).get("tables") or {}).items():
            for i, e in enumerate(items or []):
                where = f"{path}: papers.{paper}.tables.{task}[{i}]"
                for key in ("model", "method", "metric", "source"):
                    if not e.get(key):
                        raise ValueError(f"{where}: `{key}` is required")
                if e.get("value") is None and e.get("gain") is None:
                    raise ValueError(f"{where}: give `value` or `gain`")
                if sum(bool(e.get(k)) for k in ("dataset", "datasets", "group")) != 1:
                    raise ValueError(f"{where}: give exactly one of dataset, datasets, group")
                base = e.get("baseline") or ()
                entries.append(
                    Published(
                        task=task,
                        model=str(mmap.get(e["model"], e["model"])),
                        method=str(e["method"]),
                        metric=str(e["metric"]),
                        source=str(e["source"]),
                        dataset=ds(e["dataset"]) if e.get("dataset") else None,
                        datasets=tuple(ds(d) for d in e.get("datasets") or ()),
                        group=e.get("group"),
                        variant=e.get("variant"),
                        value=None if e.get("value") is None else float(e["value"]),
                        gain=None if e.get("gain") is None else float(e["gain"]),
                        baselines=(base,) if isinstance(base, str) else tuple(base),
                        note=str(e.get("note") or ""),
                        paper=str(paper),
                    )
                )
    groups = {
        task: {name: [ds(d) for d in members] for name, members in (g or {}).items()}
        for task, g in (doc.get("groups") or {}).items()
    }
    return entries, groups


# --- cells ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One table cell before formatting; no mean and no notes means no run ("-")."""

    mean: float | None = None
    std: float | None = None  # sample std (ddof=1) over seeds; shown only when n > 1
    n: int = 0  # number of seeds with a value
    gain: float | None = None  # mean minus the baseline row's mean
    notes: tuple[int, ...] = ()  # footnote numbers (skip reasons)
    marks: str = ""  # e.g. significance marks, appended after the number
    p_value: float | None = None  # paired bootstrap p against the baseline row, if tested


@dataclass(frozen=True)
class PubCell:
    """A published number beside one of our cells, with our differences to it."""

    value: float | None = None
    gain: float | None = None
    diff_value: float | None = None  # ours minus published
    diff_gain: float | None = None
    notes: tuple[int, ...] = ()  # footnote numbers (sources)


def _signed(x: float, digits: int) -> str:
    return f"{'-' if x < 0 and round(x, digits) != 0 else '+'}{abs(x):.{digits}f}"


def _notes(notes: Iterable[int], note: str) -> str:
    return "".join(note.format(i) for i in notes)


def format_cell(
    cell: Cell, digits: int = 2, pm: str = " ± ", note: str = " [{}]",
    mark: Callable[[str], str] = str,
) -> str:
    """Text of a cell: "11.00 ± 1.41† (+3.00)", "19.00", "n/a [1]" or "-".

    `pm`, `note` (a format string for a footnote number) and `mark` (maps the marks) let other
    renderers (LaTeX, HTML) reuse this single formatter.
    """
    notes = _notes(cell.notes, note)
    if cell.mean is None:
        return f"n/a{notes}" if notes else "-"
    text = f"{cell.mean:.{digits}f}"
    if cell.n > 1 and cell.std is not None:
        text += f"{pm}{cell.std:.{digits}f}"
    if cell.marks:
        text += mark(cell.marks)
    if cell.gain is not None:
        text += f" ({_signed(cell.gain, digits)})"
    return text + notes


def format_published(
    pub: PubCell | None, digits: int = 2, note: str = " [{}]", delta: str = "Δ"
) -> str:
    """Text of a published cell: "34.71 (+1.57); Δ -1.20, +0.40 [3]" ("" when none).

    The number and (gain) as published; after "Δ" our differences (ours minus published) for
    whichever of the two we also have.
    """
    if pub is None or (pub.value is None and pub.gain is None):
        return ""
    parts = []
    if pub.value is not None:
        parts.append(f"{pub.value:.{digits}f}")
    if pub.gain is not None:
        parts.append(f"({_signed(pub.gain, digits)})")
    text = " ".join(parts)
    diffs = [_signed(d, digits) for d in (pub.diff_value, pub.diff_gain) if d is not None]
    if diffs:
        text += f"; {delta} " + ", ".join(diffs)
    return text + _notes(pub.notes, note)


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

    def panel_columns(self) -> list[tuple[str, list[ColKey]]]:
        """(panel title, columns) pairs: one per metric label if the spec asks for panels."""
        if not (self.spec and self.spec.panels):
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
        text += "; - = no result; n/a = metric skipped. Scores on 0-100."
        if self.published:
            text += (
                " Rows `published`: the published number and (published gain); after Δ our"
                " number minus the published one (and our gain minus the published gain)."
            )
        return text


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


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


def _matches(row: RowKey, selector: str) -> bool:
    """Does a row match "method" or "method/variant"?"""
    method, _, variant = selector.partition("/")
    return row[1] == method and (not variant or row[2] == variant)


def choose_baseline(rows: Sequence[RowKey], spec: TableSpec, default: str) -> str:
    """The first of the spec's baselines (then `default`) that some row matches."""
    for sel in (*spec.baselines, default):
        if any(_matches(r, sel) for r in rows):
            return sel
    return default


def baseline_row(rows: Sequence[RowKey], row: RowKey, selector: str) -> RowKey | None:
    """The baseline row of `row`: same model, matching `selector`, same variant if there is one,
    else the first such row; None for a baseline row itself or when the model has none."""
    if _matches(row, selector):
        return None
    cands = [r for r in rows if r[0] == row[0] and _matches(r, selector)]
    same = [r for r in cands if r[2] == row[2]]
    return (same or cands or [None])[0]


def spec_row_order(rows: Sequence[RowKey], spec: TableSpec, baseline: str) -> list[RowKey]:
    """Rows of each model (models in their order): the baseline first, then the spec's
    `row_order` selectors in turn, then the rest in their order."""
    def rank(row: RowKey) -> int:
        if _matches(row, baseline):
            return -1
        return next((i for i, sel in enumerate(spec.row_order) if _matches(row, sel)),
                    len(spec.row_order))

    if not spec.row_order:
        return list(rows)
    models = _unique(r[0] for r in rows)
    return sorted(rows, key=lambda r: (models.index(r[0]), rank(r)))


def _ordered_groups(groups: Mapping[str, Sequence[str]], first: Sequence[str]
                    ) -> list[tuple[str, Sequence[str]]]:
    """Groups named in `first` (in that order), then the others in their order."""
    named = [(g, groups[g]) for g in first if g in groups]
    return named + [(g, m) for g, m in groups.items() if g not in first]


def _resolve_metrics(
    tidy: pd.DataFrame, spec: TableSpec
) -> tuple[list[MetricSpec], dict[tuple[str, str, str, str], str]]:
    """Metric columns present, and which metric key fills each (row-run, dataset, label).

    Returns the metric specs with data (spec order, then unclaimed metrics in record order)
    and a map (model, method, variant, dataset, label) -> metric key ... keyed per run group.
    """
    present = _unique(tidy["metric"])
    chosen: dict[tuple[str, str, str, str], str] = {}
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


def _footnote(footnotes: list[str], text: str) -> int:
    if text not in footnotes:
        footnotes.append(text)
    return footnotes.index(text) + 1


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
    groups: Mapping[str, Sequence[str]] | None = None,
    pvalues: Mapping[tuple[RowKey, str, str], float] | None = None,
    published: Sequence[Published] = (),
    significance: str = "",
) -> TaskTable:
    """Build the table of one task.

    Cells: mean over seeds (± sample std), gain over the baseline row, a significance mark
    where `pvalues[(row, metric key, dataset)] < 0.05`. Rows: per model (order of appearance)
    the baseline rows first, then the others in order of appearance; the baseline is the
    spec's first baseline method present, else `baseline_method`. A row's baseline is the same
    model's baseline row with the same variant, else its first baseline row. Average columns:
    one per group in `groups` (datasets of that group present in the table), then Avg over all
    datasets (only with >1 dataset); an average is the mean of the per-dataset means when
    every dataset of it has one, else "-". `published` entries become `published` rows.
    """
    spec = spec or table_spec(task)
    tidy = tidy_frame(results)
    tidy = tidy[tidy["task"] == task]
    task_results = [r for r in results if r.get("task") == task]
    datasets = _unique(tidy["dataset"])
    specs, chosen = _resolve_metrics(tidy, spec)
    all_rows = row_order(tidy, baseline_method)
    baseline = choose_baseline(all_rows, spec, baseline_method)
    base_method = baseline.partition("/")[0]
    rows = row_order(tidy, base_method)
    if "/" in baseline:  # a method/variant baseline: that row first within its model
        rows = [r for m in _unique(r[0] for r in rows) for first in (True, False)
                for r in rows if r[0] == m and _matches(r, baseline) == first]
    rows = spec_row_order(rows, spec, baseline)

    avg_groups: dict[str, list[str]] = {}
    for name, members in _ordered_groups(groups or {}, spec.group_order):
        present = [d for d in datasets if d in set(members)]
        if present and name != AVG:
            avg_groups[name] = present
    if len(datasets) > 1:
        avg_groups[AVG] = list(datasets)

    # per (row, label, dataset): mean, std, n, skip reasons, metric key
    stats: dict[tuple[RowKey, str, str], tuple[float | None, float | None, int, list[str]]] = {}
    for (model, method, variant, dataset), g in tidy.groupby(
        ["model", "method", "variant", "dataset"], sort=False
    ):
        for ms in specs:
            key = chosen.get((model, method, variant, dataset, ms.label))
            if key is None:
                continue
            sub = g[g["metric"] == key]
            vals = sub["value"].dropna()
            reasons = _unique(sub.loc[sub["skipped_reason"] != "", "skipped_reason"])
            mean = float(vals.mean()) if len(vals) else None
            std = float(vals.std(ddof=1)) if len(vals) > 1 else None
            stats[((model, method, variant), ms.label, dataset)] = (mean, std, len(vals), reasons)

    def mean_of(row: RowKey | None, label: str, col: str) -> float | None:
        if row is None:
            return None
        if col in avg_groups:
            vals = [stats.get((row, label, d), (None,))[0] for d in avg_groups[col]]
            return sum(vals) / len(vals) if vals and all(v is not None for v in vals) else None
        return stats.get((row, label, col), (None,))[0]

    col_names = list(datasets) + list(avg_groups)
    if spec.by_dataset:
        columns: list[ColKey] = [(ms.label, d) for d in col_names for ms in specs]
    else:
        columns = [(ms.label, d) for ms in specs for d in col_names]

    footnotes: list[str] = []
    cells: dict[tuple[RowKey, ColKey], Cell] = {}
    pvalues = pvalues or {}
    for row in rows:
        base = baseline_row(rows, row, baseline)
        for label, col in columns:
            mean = mean_of(row, label, col)
            if col in avg_groups:
                std, n, reasons = None, (1 if mean is not None else 0), []
            else:
                _, std, n, reasons = stats.get((row, label, col), (None, None, 0, []))
            notes = tuple(_footnote(footnotes, reason) for reason in reasons)
            b = mean_of(base, label, col)
            gain = mean - b if mean is not None and b is not None else None
            key = chosen.get((*row, col, label))
            p = pvalues.get((row, key, col)) if key and col not in avg_groups else None
            marks = MARK if p is not None and p < ALPHA and mean is not None else ""
            cells[(row, (label, col))] = Cell(mean, std, n, gain, notes, marks, p)

    # which metric key fills each label (footnoted when it is not the obvious one)
    metric_keys: dict[str, list[tuple[str, list[str]]]] = {}
    for ms in specs:
        by_key: dict[str, list[str]] = {}
        for (_, _, _, d, label), key in chosen.items():
            if label == ms.label and d not in by_key.get(key, []):
                by_key.setdefault(key, []).append(d)
        metric_keys[ms.label] = list(by_key.items())
        if any(metric_name(k) != ms.label for k in by_key):
            parts = [f"`{k}` ({', '.join(ds)})" if len(by_key) > 1 else f"`{k}`"
                     for k, ds in by_key.items()]
            _footnote(footnotes, f"{ms.label} = " + "; ".join(parts))

    signatures: dict[str, list[str]] = {}
    for ms in specs:
        keys = {k for (_, _, _, _, lab), k in chosen.items() if lab == ms.label}
        sigs = _unique(s for s in tidy.loc[tidy["metric"].isin(keys), "signature"] if s)
        if sigs:
            signatures[ms.label] = sigs

    table = TaskTable(
        task=task,
        frame=pd.DataFrame(),
        footnotes=footnotes,
        cells=cells,
        rows=rows,
        columns=columns,
        baseline_method=baseline,
        seeds=sorted(_unique(tidy["seed"].tolist())),
        signatures=signatures,
        spec=spec,
        datasets=list(datasets),
        groups=avg_groups,
        metric_keys=metric_keys,
        provenance=provenance_lines(task_results),
        significance=significance if any(c.p_value is not None for c in cells.values()) else "",
    )
    _place_published(table, [p for p in published if p.task == task], specs, mean_of)
    table.frame = table.formatted()
    return table


def _place_published(
    table: TaskTable,
    entries: Sequence[Published],
    specs: Sequence[MetricSpec],
    mean_of: Callable[[RowKey | None, str, str], float | None],
) -> None:
    """Put published entries beside the matching cells; lines for "*" and unplaced entries."""
    label_of = {c: ms.label for ms in specs for c in (*ms.candidates, ms.label)}
    models = {r[0] for r in table.rows}
    unplaced: list[str] = []
    elsewhere = 0
    for e in entries:
        rows = [r for r in table.rows if r[0] == e.model and r[1] == e.method
                and (e.variant is None or r[2] == e.variant)]
        if e.dataset:
            col = e.dataset if e.dataset in table.datasets else None
            ours = col is not None
        elif e.group:
            col = e.group if e.group in table.groups else None
            ours = col is not None
        else:
            col = next((g for g, ds in table.groups.items() if set(ds) == set(e.datasets)), None)
            ours = bool(set(e.datasets) & set(table.datasets))
        if e.model not in models or not ours:
            elsewhere += 1  # about runs this config does not have: counted, not listed
            continue
        note = _footnote(table.footnotes,
                         f"published: {e.source}" + (f" ({e.note})" if e.note else ""))
        what = f"{e.method} {'gain' if e.gain is not None else ''} {e.metric}".replace("  ", " ")
        if not rows or col is None:
            where = e.dataset or e.group or f"average over {len(e.datasets)} datasets"
            why = "no such run" if not rows else "not among our columns"
            unplaced.append(f"{e.model} {what} on {where}: "
                            f"{format_published(PubCell(e.value, e.gain))} ({why}) [{note}]")
            continue
        baselines = e.baselines or (table.baseline_method,)
        for row in rows:
            labels = ([ms.label for ms in specs if ms.in_paper] if e.metric == "*"
                      else [label_of.get(e.metric)])
            if labels == [None]:
                unplaced.append(f"{e.model} {what}: metric not in this table [{note}]")
                break
            gains, values = [], []
            for label in labels:
                ours = mean_of(row, label, col)
                values.append(ours)
                for sel in baselines:
                    b = mean_of(baseline_row(table.rows, row, sel), label, col)
                    gains.append(None if ours is None or b is None else ours - b)
            our_value = values[0] if len(values) == 1 else None
            our_gain = (sum(gains) / len(gains)) if gains and None not in gains else None
            pub = PubCell(
                e.value,
                e.gain,
                None if e.value is None or our_value is None else our_value - e.value,
                None if e.gain is None or our_gain is None else our_gain - e.gain,
                (note,),
            )
            if e.metric == "*":
                ours_txt = "-" if our_gain is None else _signed(our_gain, 2)
                table.summary.append(
                    f"{_label(row)} vs {' and '.join(baselines)}, mean over "
                    f"{', '.join(labels)} ({col}): published {format_published(pub)};"
                    f" ours {ours_txt}"
                )
                continue
            table.published.setdefault(row, {})[(labels[0], col)] = pub
    table.summary += [f"Not shown: {u}" for u in unplaced]
    if elsewhere:
        table.summary.append(
            f"{elsewhere} published number{'s' if elsewhere > 1 else ''} of this task refer"
            f"{'' if elsewhere > 1 else 's'} to models or datasets these runs do not have"
            " (see the published-numbers file and its `map`)."
        )


def _label(row: RowKey) -> str:
    return "/".join(row) if row[2] != "default" else "/".join(row[:2])


# --- renderers ------------------------------------------------------------------------------


def _md_row(cells: Sequence[str], widths: Sequence[int], n_left: int = len(ROW_KEYS)) -> str:
    padded = [
        c.ljust(w) if i < n_left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "| " + " | ".join(padded) + " |"


def body_lines(table: TaskTable, cols: Sequence[ColKey], formatter: Callable[[Cell], str],
          pub_formatter: Callable[[PubCell | None], str]) -> list[tuple[str, list[str]]]:
    """("ours" | "published", row cells) per table line, published lines under their row."""
    lines = []
    for row in table.rows:
        lines.append(("ours", [*row, *(formatter(table.cells[(row, c)]) for c in cols)]))
        pubs = table.published.get(row)
        if pubs and any(c in pubs for c in cols):
            lines.append(("published", ["", "published", "",
                                        *(pub_formatter(pubs.get(c)) for c in cols)]))
    return lines


def _md_table(table: TaskTable, cols: Sequence[ColKey], header: Sequence[str]) -> list[str]:
    body = [cells for _, cells in body_lines(table, cols, format_cell, format_published)]
    body = [[str(c).replace("|", "\\|") for c in r] for r in body]
    head = ["Model", "Method", "Variant", *header]
    widths = [max(3, len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
    rule = ["-" * w if i < len(ROW_KEYS) else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    return [_md_row(head, widths), "| " + " | ".join(rule) + " |",
            *(_md_row(r, widths) for r in body)]


def to_markdown(table: TaskTable) -> str:
    """Markdown: title, table (one per panel), notes, footnotes, provenance and signatures."""
    lines = [f"# {task_name(table.task)} results", "", f"{table.title}.", ""]
    for title, cols in table.panel_columns():
        if title:
            lines += [f"## {title}", ""]
            header = [d for _, d in cols]
        else:
            header = [f"{m} ({d})" for m, d in cols]
        lines += [*_md_table(table, cols, header), ""]
    lines.append(table.notes_text())
    if table.significance:
        lines += ["", table.significance]
    if table.summary:
        lines += ["", "Published comparisons:", "", *(f"- {s}" for s in table.summary)]
    if table.footnotes:
        lines += ["", *(f"[{i}] {text}  " for i, text in enumerate(table.footnotes, start=1))]
        lines[-1] = lines[-1].rstrip()
    if table.signatures:
        lines += ["", "Signatures:", ""]
        lines += [f"- {m}: `{s}`" for m, sigs in table.signatures.items() for s in sigs]
    if table.provenance:
        lines += ["", "Provenance:", "", *(f"- {p}" for p in table.provenance)]
    return "\n".join(lines) + "\n"


_HTML_STYLE = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{padding:.25em .6em;border-bottom:1px solid #ddd;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{border-bottom:2px solid #444;background:#f6f6f6}
tr.published td{color:#666;font-style:italic;font-size:.9em;border-bottom:1px dashed #ccc}
tr.base td{background:#fafafa}
p.note,li{font-size:.85em;color:#444;max-width:70em}
code{font-size:.95em;background:#f3f3f3;padding:0 .2em}
"""


def _md_code_to_html(text: str) -> str:
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(table: TaskTable) -> str:
    """A self-contained HTML page of the table (for the Snakemake report)."""
    out = ["<!doctype html><html><head><meta charset='utf-8'>",
           f"<title>{html.escape(task_name(table.task))} results</title>",
           f"<style>{_HTML_STYLE}</style></head><body>",
           f"<h1>{html.escape(table.title)}</h1>"]
    for title, cols in table.panel_columns():
        if title:
            out.append(f"<h2>{html.escape(title)}</h2>")
        out.append("<table><thead>")
        top = _unique(c[1] if table.spec and table.spec.by_dataset else c[0] for c in cols)
        if len(top) < len(cols):
            out.append("<tr><th colspan='3'></th>" + "".join(
                f"<th colspan='{sum(1 for c in cols if top_of(table, c) == t)}'>"
                f"{html.escape(t)}</th>" for t in top) + "</tr>")
            sub = [c[0] if table.spec and table.spec.by_dataset else c[1] for c in cols]
        else:
            sub = [c[1] if title else f"{c[0]} ({c[1]})" for c in cols]
        out.append("<tr><th>Model</th><th>Method</th><th>Variant</th>"
                   + "".join(f"<th>{html.escape(s)}</th>" for s in sub) + "</tr></thead><tbody>")
        for kind, cells in body_lines(table, cols, format_cell, format_published):
            cls = kind
            if kind == "ours" and _matches(tuple(cells[:3]), table.baseline_method):  # type: ignore[arg-type]
                cls = "base"
            tds = [f"<td>{html.escape(c)}</td>" for c in cells[:3]]
            tds += [f"<td class='num'>{html.escape(c)}</td>" for c in cells[3:]]
            out.append(f"<tr class='{cls}'>{''.join(tds)}</tr>")
        out.append("</tbody></table>")
    out.append(f"<p class='note'>{_md_code_to_html(table.notes_text())}</p>")
    if table.significance:
        out.append(f"<p class='note'>{html.escape(table.significance)}</p>")
    if table.summary:
        out.append("<p class='note'>Published comparisons:</p><ul>"
                   + "".join(f"<li>{_md_code_to_html(s)}</li>" for s in table.summary) + "</ul>")
    if table.footnotes:
        out.append("<ol class='notes'>" + "".join(
            f"<li>{_md_code_to_html(t)}</li>" for t in table.footnotes) + "</ol>")
    if table.signatures:
        out.append("<p class='note'>Signatures:</p><ul>" + "".join(
            f"<li>{html.escape(m)}: <code>{html.escape(s)}</code></li>"
            for m, sigs in table.signatures.items() for s in sigs) + "</ul>")
    if table.provenance:
        out.append("<p class='note'>Provenance:</p><ul>" + "".join(
            f"<li>{_md_code_to_html(p)}</li>" for p in table.provenance) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def top_of(table: TaskTable, col: ColKey) -> str:
    """The upper header of a column: its dataset (dataset-major tables) or its metric."""
    return col[1] if table.spec and table.spec.by_dataset else col[0]


CELL_COLUMNS: tuple[str, ...] = (
    "task", "model", "method", "variant", "metric", "column", "mean", "std", "n_seeds", "gain",
    "baseline", "p_value", "published_value", "published_gain", "diff_value", "diff_gain",
)


def cells_frame(table: TaskTable) -> pd.DataFrame:
    """The table's cells as tidy rows (one per row and column), with published numbers."""
    rows = []
    for row in table.rows:
        for col in table.columns:
            c = table.cells[(row, col)]
            pub = table.published.get(row, {}).get(col) or PubCell()
            rows.append({
                "task": table.task, "model": row[0], "method": row[1], "variant": row[2],
                "metric": col[0], "column": col[1], "mean": c.mean, "std": c.std,
                "n_seeds": c.n, "gain": c.gain, "baseline": table.baseline_method,
                "p_value": c.p_value, "published_value": pub.value,
                "published_gain": pub.gain, "diff_value": pub.diff_value,
                "diff_gain": pub.diff_gain,
            })
    return pd.DataFrame(rows, columns=list(CELL_COLUMNS))


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
    for task in _unique(tidy["task"]):
        table = task_table(results, task, baseline_method, groups=groups.get(task), **table_kw)
        for fmt in formats:
            path = out / (f"{task}_cells.csv" if fmt == "cells" else f"{task}.{fmt}")
            if fmt == "md":
                write_text(path, to_markdown(table))
            elif fmt == "html":
                write_text(path, to_html(table))
            elif fmt == "tex":
                from repro.latex import to_latex

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

