"""LaTeX (booktabs) rendering of a `repro.tables.TaskTable`; cells go through `format_cell`."""

from __future__ import annotations

import re
from collections.abc import Sequence

from repro.significance import MARK
from repro.tables import (
    Cell,
    ColKey,
    PubCell,
    TaskTable,
    body_lines,
    format_cell,
    format_published,
    task_name,
    top_of,
)

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "†": r"$^\dagger$",
}
_SPECIAL_RE = re.compile("|".join(re.escape(k) for k in _SPECIAL))


def escape(text: str) -> str:
    """Escape LaTeX special characters (and typeset ±, Δ, † in math mode)."""
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], str(text))


def _code(text: str) -> str:
    """Markdown-ish `code` spans -> \\texttt{...}, everything escaped."""
    parts = str(text).split("`")
    return "".join(rf"\texttt{{{escape(p)}}}" if i % 2 else escape(p) for i, p in enumerate(parts))


def latex_cell(cell: Cell) -> str:
    return format_cell(cell, pm=r" $\pm$ ", note=r"\textsuperscript{{{}}}",
                       mark=lambda m: r"$^\dagger$" if m == MARK else escape(m))


def latex_published(pub: PubCell | None) -> str:
    return format_published(pub, note=r"\textsuperscript{{{}}}", delta=r"$\Delta$")


def _header(table: TaskTable, cols: Sequence[ColKey], panels: bool) -> list[str]:
    first = 4  # first value column (1-based), after model, method, variant
    if panels:
        return ["Model & Method & Variant & " + " & ".join(escape(c[1]) for c in cols) + r" \\"]
    tops: list[tuple[str, int]] = []
    for c in cols:
        t = top_of(table, c)
        if tops and tops[-1][0] == t:
            tops[-1] = (t, tops[-1][1] + 1)
        else:
            tops.append((t, 1))
    if len(tops) == len(cols):
        return ["Model & Method & Variant & "
                + " & ".join(escape(f"{c[0]} ({c[1]})") for c in cols) + r" \\"]
    line1, rules, start = [], [], first
    for t, n in tops:
        line1.append(rf"\multicolumn{{{n}}}{{c}}{{{escape(t)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
        start += n
    sub = [c[0] if top_of(table, c) == c[1] else c[1] for c in cols]
    return [" & & & " + " & ".join(line1) + r" \\", " ".join(rules),
            "Model & Method & Variant & " + " & ".join(escape(s) for s in sub) + r" \\"]


def to_latex(table: TaskTable) -> str:
    """A `table` environment with a booktabs tabular (\\toprule/\\midrule/\\bottomrule), the
    notes, footnotes, signatures and provenance below it as a footnotesize paragraph."""
    panels = table.panel_columns()
    panelled = len(panels) > 1 or bool(panels[0][0])
    cols = panels[0][1]
    ncols = 3 + len(cols)
    lines = [
        f"% {task_name(table.task)} results by repro.latex (needs \\usepackage{{booktabs}})",
        r"\begin{table*}[t]",
        r"\centering",
        r"\small",
        r"\resizebox{\textwidth}{!}{%",
        r"\begin{tabular}{lll" + "r" * len(cols) + "}",
        r"\toprule",
        *_header(table, cols, panelled),
        r"\midrule",
    ]
    for i, (title, pcols) in enumerate(panels):
        if title:
            if i:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{ncols}}}{{l}}{{\textit{{{escape(title)}}}}} \\")
            lines.append(rf"\cmidrule(lr){{1-{ncols}}}")
        for kind, cells in body_lines(table, pcols, latex_cell, latex_published):
            left = [escape(c) for c in cells[:3]]
            if kind == "published":
                left = ["", r"\textit{published}", ""]
            lines.append(" & ".join([*left, *cells[3:]]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", rf"\caption{{{escape(table.title)}}}"]
    notes = [_code(table.notes_text())]
    if table.significance:
        notes.append(escape(table.significance))
    notes += [_code(s) for s in table.summary]
    notes += [rf"\textsuperscript{{{i}}}{_code(t)}" for i, t in enumerate(table.footnotes, 1)]
    notes += [rf"{escape(m)}: \texttt{{{escape(s)}}}"
              for m, sigs in table.signatures.items() for s in sigs]
    notes += [_code(p) for p in table.provenance]
    lines += [r"\par\footnotesize\raggedright", *(n + r"\par" for n in notes), r"\end{table*}"]
    return "\n".join(lines) + "\n"
