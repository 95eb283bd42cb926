"""Rendering of result tables and report pages: Markdown, HTML and LaTeX (booktabs).

A `repro.report.tables.TaskTable` is laid out here; every number goes through the one
formatter of its cell (repro.report.cells), with each format's notation for ±, notes and marks.
Also the table's cells as CSV rows, and the two HTML pages of the Snakemake report (runs with
their config and provenance; datasets with their filter statistics).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from repro.report.cells import Cell, ColKey, PubCell, format_cell, format_published
from repro.report.significance import MARK
from repro.report.tables import ROW_KEYS, TaskTable, matches
from repro.runs import FIELDS as RUN_KEYS
from repro.runs import Run
from repro.tasks import task_name

# --- Markdown and HTML ------------------------------------------------------------------------


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
    for title, cols in table.panel_columns(markdown=True):
        if title:
            note = table.label_notes.get(title)
            lines += [f"## {title}" + (f" [{note}]" if note else ""), ""]
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
        top = list(dict.fromkeys(top_of(table, c) for c in cols))
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
            if kind == "ours" and matches((cells[0], cells[1], cells[2]), table.baseline_method):
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
    "baseline", "p_value", "not_applicable", "published_value", "published_gain", "diff_value",
    "diff_gain",
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
                "p_value": c.p_value, "not_applicable": c.not_applicable,
                "published_value": pub.value,
                "published_gain": pub.gain, "diff_value": pub.diff_value,
                "diff_gain": pub.diff_gain,
            })
    return pd.DataFrame(rows, columns=list(CELL_COLUMNS))


# --- LaTeX ------------------------------------------------------------------------------------

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
        f"% {task_name(table.task)} results by repro.report.render"
        " (needs \\usepackage{booktabs})",
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
    body = ["<p>One row per run: every metric (skipped = could not be computed, n/a = not a"
            " metric of this run; the reason on hover), the"
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
                    shown = "n/a" if e.get("not_applicable") else "skipped"
                    cells.append(f"<td class='num' title='{html.escape(str(e['skipped']))}'>"
                                 f"{shown}</td>")
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
        rid = Run.from_record(r).id
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


