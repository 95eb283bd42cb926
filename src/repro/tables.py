"""Result tables: tidy per-metric rows, per-task comparison tables, Markdown and CSV output.

A table is built in two steps so other output formats can reuse it: `task_table` computes a grid
of `Cell`s (seed statistics, gain over the baseline, footnote numbers), and `format_cell` is the
one place that turns a cell into text. Renderers (`to_markdown`; a LaTeX one would take
`pm=r" $\\pm$ "`) only lay the formatted cells out. Published numbers can be added as further
column keys, significance marks through `Cell.marks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repro.io import atomic_path, write_text

RUN_KEYS: tuple[str, ...] = ("task", "dataset", "model", "method", "variant", "seed")
TIDY_COLUMNS: tuple[str, ...] = (*RUN_KEYS, "metric", "value", "skipped_reason", "signature")
ROW_KEYS: tuple[str, ...] = ("model", "method", "variant")

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "translation": ("bleu", "chrf", "comet"),
    "summarization": ("rouge1", "rouge2", "rougeL", "bertscore"),
    "multiple_choice": ("accuracy", "macro_f1"),
    "knowledge": ("exact_match", "f1"),
}
MAIN_METRIC: dict[str, str] = {
    "translation": "bleu",
    "summarization": "rougeL",
    "multiple_choice": "accuracy",
    "knowledge": "f1",
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
}
TASK_NAMES: dict[str, str] = {
    "translation": "Translation",
    "summarization": "Summarization",
    "multiple_choice": "Multiple choice",
    "knowledge": "Knowledge",
}
AVG = "Avg"

RowKey = tuple[str, str, str]  # (model, method, variant)
ColKey = tuple[str, str]  # (metric display name, dataset or AVG)


def metric_name(metric: str) -> str:
    """Display name of a metric key (the key itself when unknown)."""
    return METRIC_NAMES.get(metric, metric)


def task_name(task: str) -> str:
    """Display name of a task key."""
    return TASK_NAMES.get(task, task.replace("_", " ").capitalize())


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

    Metrics come in the task's canonical order, unknown ones after in record order.
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


@dataclass(frozen=True)
class Cell:
    """One table cell before formatting; no mean and no notes means no run ("-")."""

    mean: float | None = None
    std: float | None = None  # sample std (ddof=1) over seeds; shown only when n > 1
    n: int = 0  # number of seeds with a value
    gain: float | None = None  # mean minus the baseline row's mean
    notes: tuple[int, ...] = ()  # footnote numbers (skip reasons)
    marks: str = ""  # e.g. significance marks, appended after the number


def _signed(x: float, digits: int) -> str:
    return f"{'-' if x < 0 and round(x, digits) != 0 else '+'}{abs(x):.{digits}f}"


def format_cell(cell: Cell, digits: int = 2, pm: str = " ± ") -> str:
    """Text of a cell: "11.00 ± 1.41 (+3.00)", "19.00", "n/a [1]" or "-"."""
    notes = "".join(f" [{i}]" for i in cell.notes)
    if cell.mean is None:
        return f"n/a{notes}" if notes else "-"
    text = f"{cell.mean:.{digits}f}"
    if cell.n > 1 and cell.std is not None:
        text += f"{pm}{cell.std:.{digits}f}"
    text += cell.marks
    if cell.gain is not None:
        text += f" ({_signed(cell.gain, digits)})"
    return text + notes


@dataclass
class TaskTable:
    """A task's comparison table: formatted `frame` plus the cells and notes it was made from.

    `frame` has a (model, method, variant) row index and (metric, dataset) columns;
    `footnotes[i - 1]` is the text of footnote marker [i].
    """

    task: str
    frame: pd.DataFrame
    footnotes: list[str]
    cells: dict[tuple[RowKey, ColKey], Cell]
    rows: list[RowKey]
    columns: list[ColKey]
    baseline_method: str
    seeds: list[int] = field(default_factory=list)
    signatures: dict[str, list[str]] = field(default_factory=dict)  # metric name -> signatures

    def formatted(self, formatter: Callable[[Cell], str] = format_cell) -> pd.DataFrame:
        """The grid with cells rendered by `formatter`."""
        data = [[formatter(self.cells[(r, c)]) for c in self.columns] for r in self.rows]
        index = pd.MultiIndex.from_tuples(self.rows, names=list(ROW_KEYS))
        columns = pd.MultiIndex.from_tuples(self.columns, names=["metric", "dataset"])
        return pd.DataFrame(data, index=index, columns=columns)


def _unique(values: Sequence[Any]) -> list[Any]:
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


def task_table(
    results: Sequence[dict[str, Any]], task: str, baseline_method: str = "sft"
) -> TaskTable:
    """Build the table of one task: mean (± std over seeds), gain over the baseline, Avg column.

    Rows: per model (order of appearance), the baseline method's rows first, then the others in
    order of appearance. A row's baseline is the same model's baseline row with the same variant,
    else its first baseline row. Avg (only with >1 dataset) is the mean of the per-dataset means
    when every dataset has one, else "-".
    """
    tidy = tidy_frame(results)
    tidy = tidy[tidy["task"] == task]
    datasets = _unique(tidy["dataset"])
    canonical = TASK_METRICS.get(task, ())
    metrics = list(canonical) + [m for m in _unique(tidy["metric"]) if m not in canonical]
    rows = row_order(tidy, baseline_method)

    # per (row, metric, dataset): mean, std, n and skip reasons
    stats: dict[tuple[RowKey, str, str], tuple[float | None, float | None, int, list[str]]] = {}
    for (model, method, variant, metric, dataset), g in tidy.groupby(
        ["model", "method", "variant", "metric", "dataset"], sort=False
    ):
        vals = g["value"].dropna()
        reasons = _unique(g.loc[g["skipped_reason"] != "", "skipped_reason"])
        mean = float(vals.mean()) if len(vals) else None
        std = float(vals.std(ddof=1)) if len(vals) > 1 else None
        stats[((model, method, variant), metric, dataset)] = (mean, std, len(vals), reasons)

    def baseline_of(row: RowKey) -> RowKey | None:
        cands = [r for r in rows if r[0] == row[0] and r[1] == baseline_method]
        same = [r for r in cands if r[2] == row[2]]
        return None if row[1] == baseline_method or not cands else (same or cands)[0]

    def means(row: RowKey, metric: str) -> dict[str, float | None]:
        m = {d: stats.get((row, metric, d), (None,))[0] for d in datasets}
        if len(datasets) > 1:
            vals = [v for v in m.values() if v is not None]
            m[AVG] = sum(vals) / len(vals) if len(vals) == len(datasets) else None
        return m

    avg = [AVG] if len(datasets) > 1 else []
    columns: list[ColKey] = [(metric_name(m), d) for m in metrics for d in datasets + avg]
    footnotes: list[str] = []
    cells: dict[tuple[RowKey, ColKey], Cell] = {}
    for row in rows:
        base = baseline_of(row)
        for metric in metrics:
            own = means(row, metric)
            ref = means(base, metric) if base else {}
            for d, mean in own.items():
                _, std, n, reasons = stats.get((row, metric, d), (None, None, 0, []))
                if d == AVG:
                    n = 1 if mean is not None else 0
                notes = []
                for reason in reasons:
                    if reason not in footnotes:
                        footnotes.append(reason)
                    notes.append(footnotes.index(reason) + 1)
                b = ref.get(d)
                gain = mean - b if mean is not None and b is not None else None
                cells[(row, (metric_name(metric), d))] = Cell(mean, std, n, gain, tuple(notes))

    signatures: dict[str, list[str]] = {}
    for metric in metrics:
        sigs = _unique(s for s in tidy.loc[tidy["metric"] == metric, "signature"] if s)
        if sigs:
            signatures[metric_name(metric)] = sigs
    table = TaskTable(
        task=task,
        frame=pd.DataFrame(),
        footnotes=footnotes,
        cells=cells,
        rows=rows,
        columns=columns,
        baseline_method=baseline_method,
        seeds=sorted(_unique(tidy["seed"].tolist())),
        signatures=signatures,
    )
    table.frame = table.formatted()
    return table


def _md_row(cells: Sequence[str], widths: Sequence[int], n_left: int = len(ROW_KEYS)) -> str:
    padded = [
        c.ljust(w) if i < n_left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "| " + " | ".join(padded) + " |"


def to_markdown(table: TaskTable, formatter: Callable[[Cell], str] = format_cell) -> str:
    """Markdown: title, table, notes, footnotes and the metric signatures."""
    frame = table.formatted(formatter)
    header = ["Model", "Method", "Variant"] + [f"{m} ({d})" for m, d in table.columns]
    body = [[*row, *vals] for row, vals in zip(table.rows, frame.to_numpy().tolist(), strict=True)]
    body = [[str(c).replace("|", "\\|") for c in r] for r in body]
    widths = [max(3, len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    rule = ["-" * w if i < len(ROW_KEYS) else "-" * (w - 1) + ":" for i, w in enumerate(widths)]
    seeds = ", ".join(str(s) for s in table.seeds)
    lines = [
        f"# {task_name(table.task)} results",
        "",
        _md_row(header, widths),
        "| " + " | ".join(rule) + " |",
        *(_md_row(r, widths) for r in body),
        "",
        f"Mean over seeds ({seeds}), ± sample standard deviation (ddof=1) when more than one seed;"
        f" (+x.xx) = gain over `{table.baseline_method}` of the same model;"
        " Avg = mean over datasets; - = no result; n/a = metric skipped. Scores on 0-100.",
    ]
    if table.footnotes:
        lines += ["", *(f"[{i}] {text}  " for i, text in enumerate(table.footnotes, start=1))]
        lines[-1] = lines[-1].rstrip()
    if table.signatures:
        lines += ["", "Signatures:", ""]
        lines += [f"- {m}: `{s}`" for m, sigs in table.signatures.items() for s in sigs]
    return "\n".join(lines) + "\n"


def write_task_tables(
    results: Sequence[dict[str, Any]], out_dir: str | Path, baseline_method: str = "sft"
) -> list[Path]:
    """Write `{task}.md` (table) and `{task}.csv` (tidy rows) per task present; return the paths."""
    out = Path(out_dir)
    tidy = tidy_frame(results)
    paths: list[Path] = []
    for task in _unique(tidy["task"]):
        md_path, csv_path = out / f"{task}.md", out / f"{task}.csv"
        write_text(md_path, to_markdown(task_table(results, task, baseline_method)))
        rows = tidy[tidy["task"] == task]
        with atomic_path(csv_path) as tmp:
            rows.to_csv(tmp, index=False)
        paths += [md_path, csv_path]
    return paths
