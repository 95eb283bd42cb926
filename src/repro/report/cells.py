"""The cells of a result table before formatting, and the single formatter of each kind.

A `Cell` is one of our numbers (seed statistics, gain over the baseline row, significance
marks, footnote numbers); a `PubCell` a published number beside it with our differences to it.
`format_cell` and `format_published` are the only places that turn them into text; renderers
(Markdown, HTML, LaTeX: repro.report.render) pass their own notation for ±, notes and marks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

RowKey = tuple[str, str, str]  # (model, method, variant)
ColKey = tuple[str, str]  # (metric label, dataset or average column)


@dataclass(frozen=True)
class Cell:
    """One table cell before formatting: no mean and no notes means no run ("-"); no mean with
    notes a metric that could not be computed ("skipped"), or, `not_applicable`, one that is
    not a metric of the dataset ("n/a", e.g. ALCE's retrieval, which the paper does not score).
    """

    mean: float | None = None
    std: float | None = None  # sample std (ddof=1) over seeds; shown only when n > 1
    n: int = 0  # number of seeds with a value
    gain: float | None = None  # mean minus the baseline row's mean
    notes: tuple[int, ...] = ()  # footnote numbers (skip reasons)
    marks: str = ""  # e.g. significance marks, appended after the number
    p_value: float | None = None  # paired bootstrap p against the baseline row, if tested
    not_applicable: bool = False  # no score by design (never a failure)


@dataclass(frozen=True)
class PubCell:
    """A published number beside one of our cells, with our differences to it."""

    value: float | None = None
    gain: float | None = None
    diff_value: float | None = None  # ours minus published
    diff_gain: float | None = None
    notes: tuple[int, ...] = ()  # footnote numbers (sources)


def signed(x: float, digits: int = 2) -> str:
    """A difference with its sign: "+1.00", "-0.25" ("+0.00" for what rounds to zero)."""
    return f"{'-' if x < 0 and round(x, digits) != 0 else '+'}{abs(x):.{digits}f}"


def _notes(notes: Iterable[int], note: str) -> str:
    return "".join(note.format(i) for i in notes)


def format_cell(
    cell: Cell, digits: int = 2, pm: str = " ± ", note: str = " [{}]",
    mark: Callable[[str], str] = str,
) -> str:
    """Text of a cell: "11.00 ± 1.41† (+3.00)", "19.00", "skipped [1]" (could not be
    computed), "n/a [1]" or "n/a" (not a metric of this dataset), or "-" (no run).

    `pm`, `note` (a format string for a footnote number) and `mark` (maps the marks) let other
    renderers (LaTeX, HTML) reuse this single formatter.
    """
    notes = _notes(cell.notes, note)
    if cell.mean is None:
        if cell.not_applicable:
            return f"n/a{notes}"
        return f"skipped{notes}" if notes else "-"
    text = f"{cell.mean:.{digits}f}"
    if cell.n > 1 and cell.std is not None:
        text += f"{pm}{cell.std:.{digits}f}"
    if cell.marks:
        text += mark(cell.marks)
    if cell.gain is not None:
        text += f" ({signed(cell.gain, digits)})"
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
        parts.append(f"({signed(pub.gain, digits)})")
    text = " ".join(parts)
    diffs = [signed(d, digits) for d in (pub.diff_value, pub.diff_gain) if d is not None]
    if diffs:
        text += f"; {delta} " + ", ".join(diffs)
    return text + _notes(pub.notes, note)


def row_label(row: RowKey) -> str:
    """A row as text: model/method, with /variant unless it is "default"."""
    return "/".join(row) if row[2] != "default" else "/".join(row[:2])
