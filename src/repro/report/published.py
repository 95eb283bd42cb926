"""Published numbers (config/published.yaml) and where they go in our tables.

`load_published` reads the file into `Published` entries mapped to our config's ids;
`place_published` puts each beside the cell of our table it compares with (a `PubCell` with our
differences to it), or says under the table why it is not shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from repro.report.cells import ColKey, PubCell, RowKey, format_published, row_label, signed


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
    tag: str = ""  # how reliable the source is: [PAPER] the paper itself, [SECONDARY] a third party


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
                        tag=str(e.get("tag") or ""),
                    )
                )
    groups = {
        task: {name: [ds(d) for d in members] for name, members in (g or {}).items()}
        for task, g in (doc.get("groups") or {}).items()
    }
    return entries, groups


# --- placement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ours:
    """What a task table offers to place published numbers beside its cells."""

    rows: Sequence[RowKey]
    datasets: Sequence[str]
    groups: Mapping[str, Sequence[str]]  # average column -> its datasets
    label_of: Mapping[str, str]  # metric key or column label -> column label
    paper_labels: Sequence[str]  # the column labels metric "*" averages over
    baseline: str  # the table's baseline selector ("method" or "method/variant")
    mean: Callable[[RowKey | None, str, str], float | None]  # (row, label, column)
    baseline_row: Callable[[RowKey, str], RowKey | None]  # (row, selector)
    # (row, label, column): the metric is not one of that column's datasets (left out of "*")
    not_applicable: Callable[[RowKey | None, str, str], bool] = lambda row, label, col: False


@dataclass
class Placed:
    """Published cells per row and column, and the lines under the table."""

    cells: dict[RowKey, dict[ColKey, PubCell]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def _column(e: Published, ours: Ours) -> tuple[str | None, bool]:
    """(our column for the entry or None, whether our runs cover any of its datasets)."""
    if e.dataset:
        col = e.dataset if e.dataset in ours.datasets else None
        return col, col is not None
    if e.group:
        col = e.group if e.group in ours.groups else None
        return col, col is not None
    col = next((g for g, ds in ours.groups.items() if set(ds) == set(e.datasets)), None)
    return col, bool(set(e.datasets) & set(ours.datasets))


def _ours(e: Published, row: RowKey, col: str, labels: Sequence[str], ours: Ours
          ) -> tuple[float | None, float | None]:
    """Our value (one label) and our gain (the mean over labels and baselines) beside `e`."""
    gains: list[float | None] = []
    values = []
    for label in labels:
        mine = ours.mean(row, label, col)
        values.append(mine)
        for sel in e.baselines or (ours.baseline,):
            b = ours.mean(ours.baseline_row(row, sel), label, col)
            gains.append(None if mine is None or b is None else mine - b)
    known = [g for g in gains if g is not None]
    gain = sum(known) / len(known) if gains and len(known) == len(gains) else None
    return (values[0] if len(values) == 1 else None), gain


def place_published(entries: Sequence[Published], ours: Ours,
                    footnote: Callable[[str], int]) -> Placed:
    """Put published entries beside the matching cells; lines for "*" entries (mean over the
    metric columns) and for entries not shown; `footnote(text)` numbers each source."""
    placed, unplaced, elsewhere = Placed(), list[str](), 0
    models = {r[0] for r in ours.rows}
    for e in entries:
        rows = [r for r in ours.rows if r[0] == e.model and r[1] == e.method
                and (e.variant is None or r[2] == e.variant)]
        col, covered = _column(e, ours)
        if e.model not in models or not covered:
            elsewhere += 1  # about runs this config does not have: counted, not listed
            continue
        note = footnote(f"published{f' {e.tag}' if e.tag else ''}: {e.source}"
                        + (f" ({e.note})" if e.note else ""))
        what = f"{e.method} {'gain' if e.gain is not None else ''} {e.metric}".replace("  ", " ")
        if not rows or col is None:
            where = e.dataset or e.group or f"average over {len(e.datasets)} datasets"
            why = "no such run" if not rows else "not among our columns"
            unplaced.append(f"{e.model} {what} on {where}: "
                            f"{format_published(PubCell(e.value, e.gain))} ({why}) [{note}]")
            continue
        if e.metric == "*":
            labels = list(ours.paper_labels)
        elif (label := ours.label_of.get(e.metric)) is not None:
            labels = [label]
        else:
            unplaced.append(f"{e.model} {what}: metric not in this table [{note}]")
            continue
        for row in rows:
            if e.metric == "*":  # the paper's columns that apply to the datasets of `col`
                labels = [lab for lab in ours.paper_labels
                          if not ours.not_applicable(row, lab, col)]
            value, gain = _ours(e, row, col, labels, ours)
            pub = PubCell(e.value, e.gain,
                          None if e.value is None or value is None else value - e.value,
                          None if e.gain is None or gain is None else gain - e.gain, (note,))
            if e.metric != "*":
                placed.cells.setdefault(row, {})[(labels[0], col)] = pub
                continue
            ours_txt = "-" if gain is None else signed(gain, 2)
            bases = " and ".join(e.baselines or (ours.baseline,))
            placed.lines.append(f"{row_label(row)} vs {bases}, mean over {', '.join(labels)}"
                                f" ({col}): published {format_published(pub)}; ours {ours_txt}")
    placed.lines += [f"Not shown: {u}" for u in unplaced]
    if elsewhere:
        placed.lines.append(
            f"{elsewhere} published number{'s' if elsewhere > 1 else ''} of this task refer"
            f"{'' if elsewhere > 1 else 's'} to models or datasets these runs do not have"
            " (see the published-numbers file and its `map`)."
        )
    return placed
