"""Tables from hand-made result records: tidy rows, seed statistics, gains, footnotes, files."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from repro.tables import (
    TIDY_COLUMNS,
    Cell,
    format_cell,
    read_tidy_csv,
    task_table,
    tidy_frame,
    to_markdown,
    write_task_tables,
)

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
    assert list(t.frame.columns) == [
        ("BLEU", "a"), ("BLEU", "b"), ("BLEU", "Avg"),
        ("chrF++", "a"), ("chrF++", "b"), ("chrF++", "Avg"),
        ("COMET", "a"), ("COMET", "b"), ("COMET", "Avg"),
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
    assert list(t.frame.columns) == [("EM", "kb"), ("F1", "kb")]
    assert row(t, "sft")[("F1", "kb")] == "45.50"


def test_skipped_and_missing(results):
    t = task_table(results, "translation")
    assert row(t, "sft")[("COMET", "a")] == "n/a [1]"
    assert row(t, "ntp")[("COMET", "a")] == "n/a [1]"
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
    assert r[("BLEU", "b")] == r[("BLEU", "c")] == "n/a [1]"
    assert r[("COMET", "a")] == "n/a [2]"
    assert r[("chrF++", "b")] == "-"
    assert t.footnotes == ["no refs", COMET_SKIP]


def test_format_cell_is_the_single_formatter():
    assert format_cell(Cell()) == "-"
    assert format_cell(Cell(mean=1.0, std=0.5, n=3, gain=-0.25)) == "1.00 ± 0.50 (-0.25)"
    assert format_cell(Cell(mean=1.0, std=0.5, n=3), pm=r" $\pm$ ") == r"1.00 $\pm$ 0.50"
    assert format_cell(Cell(notes=(2,))) == "n/a [2]"
    assert format_cell(Cell(mean=1.0, n=1, marks="*")) == "1.00*"


def test_markdown_shape(results):
    md = to_markdown(task_table(results, "translation"))
    lines = md.splitlines()
    assert lines[0].startswith("# Translation")
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + 3  # header, rule, 3 rows
    assert all(ln.count("|") == table[0].count("|") for ln in table)
    assert "BLEU (a)" in table[0] and "COMET (Avg)" in table[0]
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:4] == ["m", "sft", "default", "11.00 ± 1.41"]
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
