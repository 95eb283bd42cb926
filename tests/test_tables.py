"""Tables from hand-made result records: tidy rows, seed statistics, gains, footnotes, files."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from repro.report.cells import Cell, format_cell, format_published
from repro.report.published import Published, load_published
from repro.report.render import cells_frame, escape, to_html, to_latex, to_markdown
from repro.report.tables import TIDY_COLUMNS, read_tidy_csv, task_table, tidy_frame
from repro.report.write import write_task_tables

ROOT = Path(__file__).resolve().parents[1]

COMET_SKIP = "no COMET model configured (set metrics.comet.model)"


def rec(task, dataset, model, method, seed, metrics, variant="default"):
    return {
        "task": task,
        "dataset": dataset,
        "model": model,
        "method": method,
        "variant": variant,
        "seed": seed,
        "metrics": metrics,
    }


def mt(bleu, chrf=50.0, comet=None):
    """Translation metrics; COMET skipped unless a value is given."""
    return {
        "bleu": {"value": bleu, "signature": "nrefs:1|tok:13a"},
        "chrf": {"value": chrf, "signature": "nrefs:1|chrF2++"},
        "comet": {"value": comet} if comet is not None else {"skipped": COMET_SKIP},
    }


KN = {"exact_match": {"value": 30.0}, "f1": {"value": 45.5}}


@pytest.fixture
def results():
    """Two datasets; sft (2 seeds) and warmup (2 seeds on `a`, 1 on `b`); ntp missing on `b`."""
    return [
        rec("translation", "a", "m", "sft", 0, mt(10.0, 40.0)),
        rec("translation", "a", "m", "sft", 1, mt(12.0, 42.0)),
        rec("translation", "b", "m", "sft", 0, mt(20.0, 60.0)),
        rec("translation", "b", "m", "sft", 1, mt(20.0, 62.0)),
        rec("translation", "a", "m", "warmup", 0, mt(13.0, 41.0)),
        rec("translation", "a", "m", "warmup", 1, mt(15.0, 41.0)),
        rec("translation", "b", "m", "warmup", 0, mt(19.0, 65.0)),
        rec("translation", "a", "m", "ntp", 0, mt(11.0, 40.0)),
        rec("knowledge", "kb", "m", "sft", 0, KN),
    ]


def row(table, method, model="m", variant="default"):
    return table.frame.loc[(model, method, variant)]


def test_tidy_frame_rows_and_skipped(results):
    df = tidy_frame(results)
    assert list(df.columns) == list(TIDY_COLUMNS)
    assert len(df) == 8 * 3 + 2
    first = df.iloc[:3]
    assert list(first["metric"]) == ["bleu", "chrf", "comet"]
    assert list(first["value"][:2]) == [10.0, 40.0]
    assert first["signature"].iloc[0] == "nrefs:1|tok:13a"
    comet = first.iloc[2]
    assert math.isnan(comet["value"])
    assert comet["skipped_reason"] == COMET_SKIP
    assert first["skipped_reason"].iloc[0] == ""
    kn = df[df["task"] == "knowledge"]
    assert list(kn["metric"]) == ["exact_match", "f1"] and list(kn["signature"]) == ["", ""]
    assert df["seed"].dtype.kind == "i"


def test_tidy_frame_rejects_duplicate_runs(results):
    with pytest.raises(ValueError, match="duplicate"):
        tidy_frame(results + [results[0]])


def test_tidy_frame_empty():
    df = tidy_frame([])
    assert df.empty and list(df.columns) == list(TIDY_COLUMNS)


def test_columns_and_row_order(results):
    # warmup appears before sft in the input; the baseline still comes first.
    t = task_table(results[4:] + results[:4], "translation")
    assert list(t.frame.index) == [
        ("m", "sft", "default"),
        ("m", "warmup", "default"),
        ("m", "ntp", "default"),
    ]
    # the paper's order: BLEU, COMET, chrF++
    assert list(t.frame.columns) == [
        ("BLEU", "a"), ("BLEU", "b"), ("BLEU", "Avg"),
        ("COMET", "a"), ("COMET", "b"), ("COMET", "Avg"),
        ("chrF++", "a"), ("chrF++", "b"), ("chrF++", "Avg"),
    ]  # fmt: skip


def test_mean_std_over_seeds_ddof1(results):
    t = task_table(results, "translation")
    sft = row(t, "sft")
    assert sft[("BLEU", "a")] == "11.00 ± 1.41"  # mean(10, 12), sample std sqrt(2)
    assert sft[("BLEU", "b")] == "20.00 ± 0.00"
    assert sft[("chrF++", "b")] == "61.00 ± 1.41"
    # a single seed shows no ±
    assert row(t, "warmup")[("BLEU", "b")] == "19.00 (-1.00)"
    assert row(t, "ntp")[("BLEU", "a")] == "11.00 (+0.00)"


def test_gain_over_baseline(results):
    t = task_table(results, "translation")
    warm = row(t, "warmup")
    assert warm[("BLEU", "a")] == "14.00 ± 1.41 (+3.00)"
    assert warm[("chrF++", "b")] == "65.00 (+4.00)"
    assert "(" not in row(t, "sft")[("BLEU", "a")]
    # another baseline method: sft now gets gains relative to warmup
    t2 = task_table(results, "translation", baseline_method="warmup")
    assert list(t2.frame.index)[0] == ("m", "warmup", "default")
    assert t2.frame.loc[("m", "sft", "default"), ("BLEU", "a")] == "11.00 ± 1.41 (-3.00)"


def test_gain_needs_same_model():
    res = [
        rec("translation", "a", "m1", "sft", 0, mt(10.0)),
        rec("translation", "a", "m2", "warmup", 0, mt(15.0)),
    ]
    t = task_table(res, "translation")
    assert list(t.frame.index) == [("m1", "sft", "default"), ("m2", "warmup", "default")]
    assert t.frame.loc[("m2", "warmup", "default"), ("BLEU", "a")] == "15.00"


def test_avg_column(results):
    t = task_table(results, "translation")
    assert row(t, "sft")[("BLEU", "Avg")] == "15.50"  # mean(11, 20)
    assert row(t, "warmup")[("BLEU", "Avg")] == "16.50 (+1.00)"  # mean(14, 19)
    assert row(t, "ntp")[("BLEU", "Avg")] == "-"  # no run on b
    assert row(t, "sft")[("COMET", "Avg")] == "-"  # skipped everywhere


def test_no_avg_with_one_dataset(results):
    t = task_table(results, "knowledge")
    # EM fills the co-supervision table's Correctness column (footnoted); the table shows only
    # the paper's columns (F1 stays in the csv)
    assert list(t.frame.columns) == [("Correctness", "kb")]
    assert "Correctness: EM `exact_match` (kb)" in t.footnotes


def test_skipped_and_missing(results):
    t = task_table(results, "translation")
    assert row(t, "sft")[("COMET", "a")] == "skipped [1]"  # could not be computed
    assert row(t, "ntp")[("COMET", "a")] == "skipped [1]"
    assert row(t, "ntp")[("BLEU", "b")] == "-"
    assert row(t, "ntp")[("COMET", "b")] == "-"
    assert t.footnotes == [COMET_SKIP]


def test_one_footnote_per_reason():
    res = [
        rec("translation", "a", "m", "sft", 0, mt(10.0)),
        rec("translation", "b", "m", "sft", 0, {"bleu": {"skipped": "no refs"}}),
        rec("translation", "c", "m", "sft", 0, {"bleu": {"skipped": "no refs"}}),
    ]
    t = task_table(res, "translation")
    r = row(t, "sft")
    # numbered in reading order (row by row, left to right)
    assert r[("BLEU", "b")] == r[("BLEU", "c")] == "skipped [1]"
    assert r[("COMET", "a")] == "skipped [2]"
    assert r[("chrF++", "b")] == "-"
    assert t.footnotes == ["no refs", COMET_SKIP]


def test_format_cell_is_the_single_formatter():
    assert format_cell(Cell()) == "-"
    assert format_cell(Cell(mean=1.0, std=0.5, n=3, gain=-0.25)) == "1.00 ± 0.50 (-0.25)"
    assert format_cell(Cell(mean=1.0, std=0.5, n=3), pm=r" $\pm$ ") == r"1.00 $\pm$ 0.50"
    assert format_cell(Cell(notes=(2,))) == "skipped [2]"
    assert format_cell(Cell(notes=(2,), not_applicable=True)) == "n/a [2]"
    assert format_cell(Cell(mean=1.0, n=1, marks="*")) == "1.00*"


def test_markdown_shape(results):
    md = to_markdown(task_table(results, "translation"))
    lines = md.splitlines()
    assert lines[0].startswith("# Translation")
    # one panel per metric, as in the paper: "## BLEU", then a table with the datasets
    assert [ln for ln in lines if ln.startswith("## ")] == ["## BLEU", "## COMET", "## chrF++"]
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 3 * (2 + 3)  # per panel: header, rule, 3 rows
    assert all(ln.count("|") == table[0].count("|") for ln in table)
    assert [c.strip() for c in table[0].strip("|").split("|")][3:] == ["a", "b", "Avg"]
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells == ["m", "sft", "default", "11.00 ± 1.41", "20.00 ± 0.00", "15.50"]
    assert f"[1] {COMET_SKIP}" in md
    assert "`nrefs:1|tok:13a`" in md and "`nrefs:1|chrF2++`" in md


def test_write_task_tables(results, tmp_path):
    paths = write_task_tables(results, tmp_path / "tables")
    names = sorted(p.name for p in paths)
    assert names == ["knowledge.csv", "knowledge.md", "translation.csv", "translation.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not list((tmp_path / "tables").glob(".*"))  # no temporary files left
    md = (tmp_path / "tables" / "translation.md").read_text(encoding="utf-8")
    assert md == to_markdown(task_table(results, "translation"))
    tidy = tidy_frame(results)
    for task in ("translation", "knowledge"):
        back = read_tidy_csv(tmp_path / "tables" / f"{task}.csv")
        want = tidy[tidy["task"] == task].reset_index(drop=True)
        pd.testing.assert_frame_equal(back, want)
    # plain pandas also reads it
    plain = pd.read_csv(tmp_path / "tables" / "translation.csv")
    assert len(plain) == 24 and plain["value"].isna().sum() == 8


def test_write_task_tables_nothing(tmp_path):
    assert write_task_tables([], tmp_path) == []


def test_task_without_runs(results):
    t = task_table(results, "summarization")
    assert t.frame.empty and t.footnotes == []
    assert to_markdown(t).startswith("# Summarization results")


# --- significance marks, provenance ---------------------------------------------------------

PROV = {"config_sha256": "abc123", "git_commit": "deadbeef",
        "versions": {"sacrebleu": "2.6.0", "torch": "2.13.0"}}


def test_significance_marks(results):
    pv = {
        (("m", "warmup", "default"), "bleu", "a"): 0.01,  # significant
        (("m", "warmup", "default"), "chrf", "a"): 0.30,  # tested, not significant
        (("m", "warmup", "default"), "bleu", "Avg"): 0.001,  # averages are never marked
    }
    t = task_table(results, "translation", pvalues=pv, significance="† = p < 0.05")
    warm = row(t, "warmup")
    assert warm[("BLEU", "a")] == "14.00 ± 1.41† (+3.00)"
    assert warm[("chrF++", "a")] == "41.00 ± 0.00 (+0.00)"
    assert warm[("BLEU", "Avg")] == "16.50 (+1.00)"
    assert t.cells[(("m", "warmup", "default"), ("chrF++", "a"))].p_value == 0.30
    assert "† = p < 0.05" in to_markdown(t)
    # nothing tested: no explanation printed
    assert task_table(results, "translation", significance="x").significance == ""


def test_provenance_in_footer(results):
    recs = [{**r, "provenance": PROV} for r in results]
    md = to_markdown(task_table(recs, "translation"))
    assert "git commit: `deadbeef`" in md
    assert "config sha256: `" in md and "sacrebleu 2.6.0" in md
    assert "`nrefs:1|tok:13a`" in md  # the sacrebleu signature
    tidy = tidy_frame(recs)
    assert set(tidy["config_sha256"]) == {"abc123"} and set(tidy["git_commit"]) == {"deadbeef"}


# --- co-supervision layout: per dataset correctness/retrieval/grounding, group averages ------


def kn(c, r, g):
    return {"answer_em": {"value": c}, "r_precision": {"value": r}, "grounding": {"value": g}}


@pytest.fixture
def cosup():
    """Method cosup: separate (2 seeds; the paper's baseline), nsp and ntp+nsp, on two
    in-domain sets and one out-of-domain set."""
    data = {
        "separate": {"nq": (30, 40, 10), "fever": (60, 50, 20), "zsre": (20, 30, 5)},
        "nsp": {"nq": (25, 55, 30), "fever": (50, 60, 30), "zsre": (15, 45, 25)},
        "ntp+nsp": {"nq": (40, 60, 40), "fever": (70, 70, 40), "zsre": (30, 50, 35)},
    }
    res = []
    for variant, per in data.items():
        for ds, (c, r, g) in per.items():
            res.append(rec("knowledge", ds, "llama", "cosup", 0, kn(c, r, g), variant=variant))
            if variant == "separate":
                res.append(rec("knowledge", ds, "llama", "cosup", 1, kn(c + 2, r, g),
                               variant=variant))
    return res


GROUPS = {"In-domain": ["nq", "fever", "wow"], "Out-of-domain": ["zsre"]}


def test_cosup_layout_and_group_averages(cosup):
    t = task_table(cosup, "knowledge", groups=GROUPS)
    assert t.baseline_method == "cosup/separate"  # the paper's baseline, not sft
    # the baseline, the paper's method, then our ablation
    assert list(t.frame.index) == [("llama", "cosup", v) for v in ("separate", "ntp+nsp", "nsp")]
    labels = ["Correctness", "Retrieval", "Grounding"]
    want = [(lab, d) for d in ("nq", "fever", "zsre", "In-domain", "Out-of-domain", "Avg")
            for lab in labels]
    assert list(t.frame.columns) == want
    ntp, both = row(t, "cosup", "llama", "separate"), row(t, "cosup", "llama", "ntp+nsp")
    assert ntp[("Correctness", "nq")] == "31.00 ± 1.41"
    assert ntp[("Correctness", "In-domain")] == "46.00"  # mean(31, 61): wow has no runs
    assert both[("Correctness", "In-domain")] == "55.00 (+9.00)"
    assert both[("Retrieval", "Out-of-domain")] == "50.00 (+20.00)"
    assert both[("Grounding", "Avg")] == "38.33 (+26.67)"  # mean(40,40,35) - mean(10,20,5)
    assert row(t, "cosup", "llama", "nsp")[("Retrieval", "nq")] == "55.00 (+15.00)"
    assert "Correctness: answer_em `answer_em` (every dataset)" in t.footnotes


def test_cosup_dataset_major_latex_header(cosup):
    tex = to_latex(task_table(cosup, "knowledge", groups=GROUPS))
    assert r"\multicolumn{3}{c}{nq}" in tex and r"\multicolumn{3}{c}{Out-of-domain}" in tex
    assert r"\cmidrule(lr){4-6}" in tex
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1


def test_baseline_falls_back_to_default():
    res = [rec("knowledge", "kb", "m", "sft", 0, KN), rec("knowledge", "kb", "m", "x", 0, KN)]
    t = task_table(res, "knowledge")
    assert t.baseline_method == "sft"
    assert row(t, "x")[("Correctness", "kb")] == "30.00 (+0.00)"


# --- published numbers ----------------------------------------------------------------------


def pub(**kw):
    base = {"task": "translation", "model": "m", "method": "warmup", "metric": "bleu",
            "source": "paper, Table 1"}
    return Published(**{**base, **kw})


def test_published_value_and_gain(results):
    entries = [
        pub(dataset="a", value=15.0),  # absolute number: Δ = 14 - 15
        pub(datasets=("a", "b"), gain=1.5),  # average gain over both datasets: Δ = 1.0 - 1.5
        pub(metric="chrf", dataset="b", value=60.0, gain=3.0, source="site X"),
    ]
    t = task_table(results, "translation", published=entries)
    pubs = t.published[("m", "warmup", "default")]
    assert format_published(pubs[("BLEU", "a")]) == "15.00; Δ -1.00 [2]"
    assert pubs[("BLEU", "a")].diff_value == pytest.approx(-1.0)
    assert format_published(pubs[("BLEU", "Avg")]) == "(+1.50); Δ -0.50 [2]"
    assert format_published(pubs[("chrF++", "b")]) == "60.00 (+3.00); Δ +5.00, +1.00 [3]"
    assert t.footnotes[1:] == ["published: paper, Table 1", "published: site X"]
    md = to_markdown(t)
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    # the BLEU panel: sft, warmup, its published row, ntp
    bleu = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:6]]
    assert bleu[2] == ["", "published", "", "15.00; Δ -1.00 [2]", "", "(+1.50); Δ -0.50 [2]"]
    assert bleu[3][1] == "ntp"
    cells = cells_frame(t)
    c = cells[(cells["method"] == "warmup") & (cells["metric"] == "BLEU")
              & (cells["column"] == "Avg")].iloc[0]
    assert c["published_gain"] == 1.5 and c["diff_gain"] == pytest.approx(-0.5)
    assert c["gain"] == pytest.approx(1.0)


def test_published_without_our_number(results):
    t = task_table(results, "translation", published=[pub(method="ntp", dataset="b", value=9.0)])
    assert format_published(t.published[("m", "ntp", "default")][("BLEU", "b")]) == "9.00 [2]"


def test_published_not_placed(results):
    entries = [
        pub(model="other", dataset="a", value=1.0),  # no such model in our runs
        pub(datasets=("a", "b", "c"), gain=1.0),  # average over datasets we do not all have
    ]
    t = task_table(results, "translation", published=entries)
    entries.append(pub(method="nsp", dataset="a", value=1.0))  # our model, no such method
    t = task_table(results, "translation", published=entries)
    assert t.published == {}
    assert t.summary[0].startswith("Not shown: m warmup gain bleu on average over 3 datasets")
    assert "not among our columns" in t.summary[0]
    assert t.summary[1].startswith("Not shown: m nsp bleu on a: 1.00 (no such run)")
    # entries about models or datasets we do not run are only counted
    assert t.summary[2].startswith("1 published number of this task refers to models")
    assert "Not shown" in to_markdown(t)
    only_elsewhere = task_table(results, "translation", published=entries[:1])
    assert len(only_elsewhere.summary) == 1 and only_elsewhere.footnotes == [COMET_SKIP]


def test_published_mean_over_metrics_line(cosup):
    e = Published(task="knowledge", model="llama", method="cosup", variant="ntp+nsp",
                  metric="*", group="Avg", gain=14.2,
                  baselines=("cosup/separate", "cosup/nsp"), source="paper, abstract")
    t = task_table(cosup, "knowledge", groups=GROUPS, published=[e])
    assert len(t.summary) == 1
    line = t.summary[0]
    # ours: mean over 3 metrics and 2 baselines of the Avg-column gains
    separate = [(30 + 1 + 60 + 1 + 20 + 1) / 3, 40, 35 / 3]
    nsp = [30, 160 / 3, 85 / 3]
    both = [140 / 3, 60, 115 / 3]
    ours = sum(b - x for base in (separate, nsp) for b, x in zip(both, base, strict=True)) / 6
    assert f"ours +{ours:.2f}" in line and "(+14.20); Δ " in line


def test_load_published(tmp_path):
    doc = {
        "map": {"datasets": {"de-en": "wmt_de_en", "en-de": "wmt_en_de"},
                "models": {"mT5-base": "mt5_base"}},
        "groups": {"knowledge": {"In-domain": ["NQ"], "Out-of-domain": ["zsRE"]}},
        "papers": {"warmup": {"tables": {"translation": [
            {"model": "mT5-base", "method": "warmup", "metric": "bleu",
             "datasets": ["de-en", "en-de"], "gain": 1.57, "baseline": "sft", "source": "s"},
            {"model": "mT5-base", "method": "warmup", "metric": "bleu", "dataset": "de-en",
             "value": 34.71, "source": "s2", "note": "model not stated"},
        ]}}},
    }
    path = tmp_path / "published.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    entries, groups = load_published(path)
    assert entries[0].model == "mt5_base" and entries[0].datasets == ("wmt_de_en", "wmt_en_de")
    assert entries[0].baselines == ("sft",) and entries[0].gain == 1.57
    assert entries[1].dataset == "wmt_de_en" and entries[1].value == 34.71
    assert groups == {"knowledge": {"In-domain": ["NQ"], "Out-of-domain": ["zsRE"]}}
    doc["papers"]["warmup"]["tables"]["translation"][0].pop("gain")
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"translation\[0\].*value.*gain"):
        load_published(path)
    assert load_published(None) == ([], {})


def test_shipped_published_file_loads():
    entries, groups = load_published(ROOT / "config" / "published.yaml")
    assert {e.task for e in entries} >= {"translation", "summarization", "multiple_choice",
                                         "knowledge"}
    assert all(e.source for e in entries)
    gains = {(e.task, e.model, e.metric): e.gain for e in entries if e.gain is not None}
    assert gains[("translation", "mt5_base", "bleu")] == 1.57
    assert gains[("multiple_choice", "llama32_1b", "macro_f1")] == 2.51
    assert set(groups["knowledge"]) == {"In-domain", "Out-of-domain"}


# --- LaTeX and HTML -------------------------------------------------------------------------


def test_latex_booktabs_and_escaping(results):
    res = [{**r, "dataset": r["dataset"] + "_x"} for r in results]
    pv = {(("m", "warmup", "default"), "bleu", "a_x"): 0.01}
    t = task_table(res, "translation", pvalues=pv, published=[pub(dataset="a_x", value=15.0)])
    tex = to_latex(t)
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1
    assert tex.count(r"\midrule") >= 3  # header rule and between the three panels
    assert r"a\_x" in tex and "a_x" not in tex.replace(r"a\_x", "")
    assert r"14.00 $\pm$ 1.41$^\dagger$ (+3.00)" in tex
    assert r"skipped\textsuperscript{1}" in tex
    assert r"\textit{published}" in tex and r"$\Delta$ -1.00" in tex
    assert r"\multicolumn{6}{l}{\textit{COMET}}" in tex
    body = [ln for ln in tex.splitlines() if ln.endswith(r"\\") and "&" in ln]
    assert all(ln.count("&") == 5 for ln in body)  # 3 row keys + 3 columns
    assert escape("50% of a_b & c#") == r"50\% of a\_b \& c\#"


def test_html_table(results):
    t = task_table(results, "translation", published=[pub(dataset="a", value=15.0)])
    page = to_html(t)
    assert page.startswith("<!doctype html>") and page.count("<table>") == 3
    assert "<tr class='published'>" in page and "<tr class='base'>" in page
    assert "11.00 ± 1.41" in page and COMET_SKIP in page


def test_write_all_formats(results, tmp_path):
    paths = write_task_tables(results, tmp_path, formats=("md", "tex", "html", "csv", "cells"),
                              groups={"knowledge": {"G": ["kb"]}})
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{t}{ext}" for t in ("translation", "knowledge")
                           for ext in (".md", ".tex", ".html", ".csv", "_cells.csv"))
    cells = pd.read_csv(tmp_path / "translation_cells.csv")
    assert len(cells) == 3 * 9 and set(cells["baseline"]) == {"sft"}
    assert "G" in set(pd.read_csv(tmp_path / "knowledge_cells.csv")["column"])
    with pytest.raises(ValueError, match="unknown table format"):
        write_task_tables(results, tmp_path, formats=("xls",))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(results, cosup, tmp_path):
    pv = {(("m", "warmup", "default"), "bleu", "a"): 0.01}
    t1 = task_table(results, "translation", pvalues=pv, significance="† = p < 0.05",
                    published=[pub(dataset="a", value=15.0), pub(datasets=("a", "b"), gain=1.5)])
    t2 = task_table(cosup, "knowledge", groups=GROUPS)
    (tmp_path / "t1.tex").write_text(to_latex(t1), encoding="utf-8")
    (tmp_path / "t2.tex").write_text(to_latex(t2), encoding="utf-8")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}"
        "\\usepackage{graphicx}\\begin{document}\\input{t1.tex}\\input{t2.tex}\\end{document}\n",
        encoding="utf-8")
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def kilt_metrics(c, r, g):
    """Knowledge metrics.json entries as repro.metrics.evaluate writes them (subset)."""
    return {
        "correctness": {"value": c, "metric": "answer_in_output",
                        "signature": "correctness=answer_in_output|cosup-answer_em"},
        "exact_match": {"value": c - 5},
        "accuracy": {"skipped": "not a KILT metric of kilt_task qa (exact_match, f1)"},
        "retrieval": {"value": r, "metric": "answer_in_retrieved"},
        "r_precision": {"value": r - 10},
        "grounding": {"value": g} if g is not None else {"skipped": "no NLI model configured"},
    }


def test_cosup_rows_groups_in_paper_order():
    """Without the paper's separate baseline, variants of method cosup that appear ntp+nsp,
    nsp, ntp are shown ntp (the baseline), ntp+nsp, nsp; In-domain comes before
    Out-of-domain whatever the order of the groups mapping."""
    per = {"ntp+nsp": {"nq": (40, 60, 30), "zsre": (30, 50, None)},
           "nsp": {"nq": (20, 50, 20), "zsre": (10, 40, None)},
           "ntp": {"nq": (30, 30, 10), "zsre": (20, 20, None)}}
    res = [rec("knowledge", ds, "llama", "cosup", 0, kilt_metrics(*v), variant=var)
           for var, by_ds in per.items() for ds, v in by_ds.items()]
    groups = {"Out-of-domain": ["zsre", "trex"], "In-domain": ["nq"]}
    t = task_table(res, "knowledge", groups=groups)
    assert t.baseline_method == "cosup/ntp"
    assert [r[2] for r in t.rows] == ["ntp", "ntp+nsp", "nsp"]
    # the config's report.baselines picks another baseline row first
    t2 = task_table(res, "knowledge", groups=groups, baselines={"knowledge": "cosup/nsp"})
    assert t2.baseline_method == "cosup/nsp" and [r[2] for r in t2.rows][0] == "nsp"
    cols = _unique_cols(t)
    assert cols == ["nq", "zsre", "In-domain", "Out-of-domain", "Avg"]
    assert [c[0] for c in t.columns[:3]] == ["Correctness", "Retrieval", "Grounding"]
    both = row(t, "cosup", "llama", "ntp+nsp")
    assert both[("Correctness", "nq")] == "40.00 (+10.00)"
    assert both[("Retrieval", "Out-of-domain")] == "50.00 (+30.00)"
    assert both[("Correctness", "Avg")] == "35.00 (+10.00)"  # mean(40, 30) - mean(30, 20)
    assert both[("Grounding", "zsre")].startswith("skipped [")  # with its reason
    assert both[("Grounding", "Avg")] == "-"  # an average needs every dataset
    assert "no NLI model configured" in t.footnotes
    assert any("correctness=answer_in_output" in s for s in t.signatures["Correctness"])


def _unique_cols(t):
    return list(dict.fromkeys(c[1] for c in t.columns))


def test_r_precision_column_beside_answer_retrieval():
    kn = {"correctness": {"value": 40.0}, "retrieval": {"value": 50.0},
          "answer_in_retrieved": {"value": 50.0}, "r_precision": {"value": 70.0}}
    t = task_table([rec("knowledge", "kb", "m", "cosup", 0, kn, "ntp+nsp")], "knowledge")
    rp = "R-precision (not in paper)"  # our secondary column, marked as such
    assert list(t.frame.columns) == [("Correctness", "kb"), ("Retrieval", "kb"), (rp, "kb")]
    assert row(t, "cosup", variant="ntp+nsp")[(rp, "kb")] == "70.00"
    assert t.footnotes[t.label_notes[rp] - 1].startswith(f"{rp}: KILT's R-precision")
    # where R-precision is the Retrieval metric itself it is not repeated
    kn2 = {"correctness": {"value": 40.0}, "r_precision": {"value": 70.0}}
    t2 = task_table([rec("knowledge", "kb", "m", "cosup", 0, kn2, "ntp+nsp")], "knowledge")
    assert list(t2.frame.columns) == [("Correctness", "kb"), ("Retrieval", "kb")]


def test_knowledge_markdown_one_table_per_metric(cosup):
    """The co-supervision table is dataset-major (LaTeX, HTML: as in the paper); Markdown shows
    one table per metric, columns the datasets then the averages, as for translation."""
    t = task_table(cosup, "knowledge", groups=GROUPS)
    md = to_markdown(t)
    # each heading points to the footnote naming the metric of each dataset
    assert [ln for ln in md.splitlines() if ln.startswith("## ")] == [
        "## Correctness [1]", "## Retrieval [2]", "## Grounding"]
    header = next(ln for ln in md.splitlines() if ln.startswith("| Model"))
    assert [c.strip() for c in header.strip("|").split("|")][3:] == [
        "nq", "fever", "zsre", "In-domain", "Out-of-domain", "Avg"]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines()
            if ln.startswith("| llama")]
    assert len(rows) == 3 * 3 and rows[1][:4] == ["llama", "cosup", "ntp+nsp", "40.00 (+9.00)"]
    assert to_latex(t).count(r"\toprule") == 1 and r"\multicolumn{3}{c}{nq}" in to_latex(t)
    assert to_html(t).count("<table>") == 1
