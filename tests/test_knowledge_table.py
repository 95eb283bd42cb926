"""The co-supervision table as the paper lays it out: per dataset Correctness, Retrieval and
Grounding, each dataset scored with its own metric (named in a footnote from the runs'
metrics.json), a retrieval that does not apply to ALCE shown as n/a (never a failure) and left
out of the averages, R-precision as our secondary column, and the published numbers beside
ours. Every expected number is computed by hand in the comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.report.cells import Cell, format_cell, format_published
from repro.report.published import Published, load_published
from repro.report.render import cells_frame, to_html, to_latex, to_markdown
from repro.report.tables import read_tidy_csv, task_table, tidy_frame

ROOT = Path(__file__).resolve().parents[1]

NO_RETRIEVAL = ("datasets.<name>.knowledge_metrics.retrieval is none: the official evaluation "
                "scores retrieval for the KILT sets only (eval_metric.py 1596-1619)")
COMET_SKIP = "no COMET model configured (set metrics.comet.model)"
# (correctness key, retrieval key or None) per dataset, as config/paper_cosup.yaml chooses them
KINDS = {"kilt_nq": ("answer_in_output", "answer_in_retrieved"),
         "kilt_wow": ("f1", "support_exist"),
         "alce_asqa": ("str_em", None),
         "alce_eli5": ("claims_nli", None)}
GROUPS = {"In-domain": ["kilt_nq", "kilt_wow", "alce_asqa"], "Out-of-domain": ["alce_eli5"]}


def na(reason: str = NO_RETRIEVAL, **extra) -> dict:
    return {"skipped": reason, "not_applicable": True, **extra}


def entries(dataset: str, c: float, r: float | None, g: float, rp: float | None) -> dict:
    """A knowledge run's metrics.json entries as repro.metrics.evaluate writes them: the
    correctness / retrieval / grounding aliases name the metric they stand for."""
    ckey, rkey = KINDS[dataset]
    out = {"correctness": {"value": c, "metric": ckey, "signature": f"correctness={ckey}|x"},
           ckey: {"value": c, "signature": "x"},
           "grounding": {"value": g, "metric": "grounding_spans", "signature": "g"}}
    if rkey is None:
        out["retrieval"] = na(metric="none")
        out["r_precision"] = na()
    else:
        out["retrieval"] = {"value": r, "metric": rkey, "signature": f"retrieval={rkey}|y"}
        out[rkey] = {"value": r}
        out["r_precision"] = {"value": rp}
    return out


def rec(dataset: str, variant: str, seed: int, metrics: dict, task: str = "knowledge") -> dict:
    return {"task": task, "dataset": dataset, "model": "llama2_7b", "method": "cosup",
            "variant": variant, "seed": seed, "metrics": metrics}


# (correctness, retrieval, grounding, R-precision) per variant and dataset; ntp+nsp on kilt_nq
# has two seeds: correctness 40 and 42 (mean 41), retrieval 60 and 64 (mean 62)
DATA = {
    "separate": {"kilt_nq": [(30, 50, 20, 10)], "kilt_wow": [(14, 40, 10, 30)],
                 "alce_asqa": [(20, None, 30, None)], "alce_eli5": [(6, None, 16, None)]},
    "ntp+nsp": {"kilt_nq": [(40, 60, 40, 20), (42, 64, 40, 20)],
                "kilt_wow": [(16, 46, 30, 36)],
                "alce_asqa": [(30, None, 50, None)], "alce_eli5": [(8, None, 20, None)]},
}


@pytest.fixture
def runs() -> list[dict]:
    return [rec(ds, variant, seed, entries(ds, *values))
            for variant, per in DATA.items() for ds, seeds in per.items()
            for seed, values in enumerate(seeds)]


def pub(**kw) -> Published:
    base = {"task": "knowledge", "model": "llama2_7b", "method": "cosup", "variant": "ntp+nsp",
            "source": "https://www.wizwand.com/paper/x", "tag": "[SECONDARY]"}
    return Published(**{**base, **kw})


PUBLISHED = [
    pub(metric="retrieval", dataset="kilt_nq", value=65.1),
    pub(metric="correctness", dataset="alce_eli5", value=10.5),
    pub(metric="*", group="Avg", gain=14.2, baselines=("cosup/separate",), tag="[PAPER]",
        source="arXiv 2403.09024, abstract"),
    pub(metric="*", group="Out-of-domain", gain=6.6, baselines=("cosup/separate",),
        tag="[PAPER]", source="arXiv 2403.09024, abstract"),
]

BOTH = ("llama2_7b", "cosup", "ntp+nsp")
SEP = ("llama2_7b", "cosup", "separate")


def table(runs, **kw):
    return task_table(runs, "knowledge", groups=GROUPS, **kw)


def cell(t, row, label, col) -> str:
    return t.frame.loc[row, (label, col)]


def test_columns_per_dataset_then_group_averages(runs):
    t = table(runs)
    labels = ["Correctness", "Retrieval", "Grounding", "R-precision (not in paper)"]
    cols = ["kilt_nq", "kilt_wow", "alce_asqa", "alce_eli5", "In-domain", "Out-of-domain", "Avg"]
    assert list(t.frame.columns) == [(lab, c) for c in cols for lab in labels]
    assert [r[2] for r in t.rows] == ["separate", "ntp+nsp"]


def test_each_dataset_scored_with_its_own_metric(runs):
    t = table(runs)
    assert cell(t, BOTH, "Correctness", "kilt_nq") == "41.00 ± 1.41 (+11.00)"  # 41 - 30
    assert cell(t, BOTH, "Correctness", "kilt_wow") == "16.00 (+2.00)"  # F1 16 - 14
    assert cell(t, BOTH, "Correctness", "alce_asqa") == "30.00 (+10.00)"  # STR-EM
    assert cell(t, BOTH, "Correctness", "alce_eli5") == "8.00 (+2.00)"  # claim recall
    assert cell(t, BOTH, "Retrieval", "kilt_nq") == "62.00 ± 2.83 (+12.00)"  # std of 60, 64
    assert cell(t, BOTH, "Retrieval", "kilt_wow") == "46.00 (+6.00)"
    assert cell(t, BOTH, "Grounding", "alce_eli5") == "20.00 (+4.00)"


def test_the_metric_of_each_dataset_is_named_in_a_footnote_from_the_runs(runs):
    t = table(runs)
    # numbered first, in column order, so that the panel headings can point to them
    assert t.footnotes[:4] == [
        "Correctness: Answer in output `answer_in_output` (kilt_nq); F1 `f1` (kilt_wow); "
        "STR-EM `str_em` (alce_asqa); Claim recall `claims_nli` (alce_eli5)",
        "Retrieval: Answer in retrieved `answer_in_retrieved` (kilt_nq); Gold page retrieved "
        "`support_exist` (kilt_wow); not applicable (alce_asqa, alce_eli5)",
        "Grounding: Revised AutoAIS (spans) `grounding_spans` (every dataset)",
        "R-precision (not in paper): KILT's R-precision of the retrieved pages (`r_precision`),"
        " a secondary column of ours; the paper's retrieval score is the Retrieval column",
    ]
    assert t.label_notes == {"Correctness": 1, "Retrieval": 2, "Grounding": 3,
                             "R-precision (not in paper)": 4}
    # the names come from the data: another metric in metrics.json, another footnote
    swapped = [{**r, "metrics": {**r["metrics"], "correctness": {
        **r["metrics"]["correctness"], "metric": "rougeL"}}} if r["dataset"] == "kilt_wow"
        else r for r in runs]
    assert "ROUGE-L `rougeL` (kilt_wow)" in table(swapped).footnotes[0]


def test_retrieval_of_alce_is_not_applicable_not_a_failure(runs):
    t = table(runs)
    reason = f"not applicable: {NO_RETRIEVAL}"
    k = t.footnotes.index(reason) + 1
    assert k == 5  # after the four metric notes
    for row in (SEP, BOTH):
        for ds in ("alce_asqa", "alce_eli5"):
            assert cell(t, row, "Retrieval", ds) == f"n/a [{k}]"
            assert cell(t, row, "R-precision (not in paper)", ds) == f"n/a [{k}]"
    c = t.cells[(BOTH, ("Retrieval", "alce_asqa"))]
    assert c.not_applicable and c.mean is None and c.gain is None


def test_averages_leave_out_datasets_where_the_metric_does_not_apply(runs):
    t = table(runs)
    # Correctness In-domain: (41 + 16 + 30) / 3 = 29; separate (30 + 14 + 20) / 3 = 21.333
    assert cell(t, BOTH, "Correctness", "In-domain") == "29.00 (+7.67)"
    # Retrieval In-domain over kilt_nq and kilt_wow only: (62 + 46) / 2 = 54; (50 + 40) / 2 = 45
    assert cell(t, BOTH, "Retrieval", "In-domain") == "54.00 (+9.00)"
    assert cell(t, BOTH, "Retrieval", "Avg") == "54.00 (+9.00)"
    # Out-of-domain holds only alce_eli5, whose retrieval does not apply: n/a, not "-"
    assert cell(t, BOTH, "Retrieval", "Out-of-domain") == "n/a"
    assert t.cells[(BOTH, ("Retrieval", "Out-of-domain"))].not_applicable
    # Correctness Avg: (41 + 16 + 30 + 8) / 4 = 23.75; separate (30 + 14 + 20 + 6) / 4 = 17.5
    assert cell(t, BOTH, "Correctness", "Avg") == "23.75 (+6.25)"
    # Grounding Avg: (40 + 30 + 50 + 20) / 4 = 35; separate (20 + 10 + 30 + 16) / 4 = 19
    assert cell(t, BOTH, "Grounding", "Avg") == "35.00 (+16.00)"
    # an applicable dataset without a value still makes its average "-"
    partial = [r for r in runs if not (r["dataset"] == "kilt_wow" and r["variant"] == "ntp+nsp")]
    assert cell(table(partial), BOTH, "Retrieval", "In-domain") == "-"


def test_a_metric_that_failed_reads_skipped_not_na(runs):
    broken = [{**r, "metrics": {**r["metrics"], "grounding": {"skipped": "no TRUE model"}}}
              if r["dataset"] == "kilt_wow" and r["variant"] == "ntp+nsp" else r for r in runs]
    t = table(broken)
    k = t.footnotes.index("no TRUE model") + 1
    assert cell(t, BOTH, "Grounding", "kilt_wow") == f"skipped [{k}]"
    assert cell(t, BOTH, "Grounding", "Avg") == "-"  # a failure is not left out
    assert format_cell(Cell(notes=(2,))) == "skipped [2]"
    assert format_cell(Cell(notes=(2,), not_applicable=True)) == "n/a [2]"
    assert format_cell(Cell(not_applicable=True)) == "n/a"
    assert format_cell(Cell()) == "-"


def test_published_numbers_beside_ours(runs):
    t = table(runs, published=PUBLISHED)
    pubs = t.published[BOTH]
    src = t.footnotes.index("published [SECONDARY]: https://www.wizwand.com/paper/x") + 1
    # ours 62 - published 65.1; ours 8 - published 10.5
    assert format_published(pubs[("Retrieval", "kilt_nq")]) == f"65.10; Δ -3.10 [{src}]"
    assert format_published(pubs[("Correctness", "alce_eli5")]) == f"10.50; Δ -2.50 [{src}]"
    assert SEP not in t.published
    paper = t.footnotes.index("published [PAPER]: arXiv 2403.09024, abstract") + 1
    # Avg gains over separate: Correctness 6.25, Retrieval 9, Grounding 16 -> mean 10.4167;
    # R-precision is not a column of the paper and stays out
    avg, ood = t.summary[:2]
    assert avg == ("llama2_7b/cosup/ntp+nsp vs cosup/separate, mean over Correctness, "
                   f"Retrieval, Grounding (Avg): published (+14.20); Δ -3.78 [{paper}]; "
                   "ours +10.42")
    # Out-of-domain: Correctness +2, Grounding +4 (Retrieval does not apply) -> +3.00
    assert ood == ("llama2_7b/cosup/ntp+nsp vs cosup/separate, mean over Correctness, "
                   f"Grounding (Out-of-domain): published (+6.60); Δ -3.60 [{paper}]; "
                   "ours +3.00")
    cells = cells_frame(t)
    nq = cells[(cells["variant"] == "ntp+nsp") & (cells["metric"] == "Retrieval")
               & (cells["column"] == "kilt_nq")].iloc[0]
    assert nq["published_value"] == 65.1 and nq["diff_value"] == pytest.approx(-3.1)
    asqa = cells[(cells["variant"] == "ntp+nsp") & (cells["metric"] == "Retrieval")
                 & (cells["column"] == "alce_asqa")].iloc[0]
    assert bool(asqa["not_applicable"]) and asqa["mean"] != asqa["mean"]  # NaN


def test_markdown_one_table_per_metric_with_its_footnote(runs):
    md = to_markdown(table(runs, published=PUBLISHED))
    assert [ln for ln in md.splitlines() if ln.startswith("## ")] == [
        "## Correctness [1]", "## Retrieval [2]", "## Grounding [3]",
        "## R-precision (not in paper) [4]"]
    lines = md.splitlines()
    start = lines.index("## Retrieval [2]") + 2
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[start:start + 5]]
    assert rows[0] == ["Model", "Method", "Variant", "kilt_nq", "kilt_wow", "alce_asqa",
                       "alce_eli5", "In-domain", "Out-of-domain", "Avg"]
    assert rows[2] == ["llama2_7b", "cosup", "separate", "50.00", "40.00", "n/a [5]",
                       "n/a [5]", "45.00", "n/a", "45.00"]
    assert rows[3][3:] == ["62.00 ± 2.83 (+12.00)", "46.00 (+6.00)", "n/a [5]", "n/a [5]",
                           "54.00 (+9.00)", "n/a", "54.00 (+9.00)"]
    assert rows[4][:4] == ["", "published", "", "65.10; Δ -3.10 [6]"]
    assert "n/a = not a metric of this dataset" in md
    assert "[5] not applicable: datasets.<name>.knowledge_metrics.retrieval is none" in md
    assert to_latex(table(runs)).count(r"\toprule") == 1
    assert "n/a" in to_html(table(runs))


def test_tidy_rows_keep_what_each_alias_stands_for(runs, tmp_path):
    tidy = tidy_frame(runs)
    r = tidy[(tidy["dataset"] == "alce_asqa") & (tidy["metric"] == "retrieval")].iloc[0]
    assert r["alias_of"] == "none" and bool(r["not_applicable"])
    c = tidy[(tidy["dataset"] == "kilt_wow") & (tidy["metric"] == "correctness")].iloc[0]
    assert c["alias_of"] == "f1" and not c["not_applicable"]
    path = tmp_path / "k.csv"
    tidy.to_csv(path, index=False)
    back = read_tidy_csv(path)
    assert back["not_applicable"].dtype == bool
    assert back.equals(tidy.reset_index(drop=True))


def test_other_tasks_keep_their_notation():
    res = [rec("a", "default", 0, {"bleu": {"value": 10.0}, "comet": {"skipped": COMET_SKIP}},
               task="translation")]
    t = task_table(res, "translation")
    assert t.footnotes == [COMET_SKIP] and t.label_notes == {}
    assert t.frame.loc[("llama2_7b", "cosup", "default"), ("COMET", "a")] == "skipped [1]"


def test_shipped_published_numbers_of_cosupervision():
    entries, groups = load_published(ROOT / "config" / "published.yaml")
    kn = [e for e in entries if e.task == "knowledge"]
    cells = {(e.metric, e.dataset): e.value for e in kn if e.dataset}
    # the ten per-dataset numbers of the wizwand page, on our dataset ids
    assert cells == {
        ("retrieval", "kilt_fever"): 77.5, ("retrieval", "kilt_wow"): 49.8,
        ("retrieval", "kilt_eli5"): 36.3, ("retrieval", "kilt_hotpotqa"): 55.6,
        ("retrieval", "kilt_nq"): 65.1, ("retrieval", "kilt_triviaqa"): 74.5,
        ("retrieval", "kilt_zsre"): 80.5, ("retrieval", "kilt_trex"): 75.5,
        ("correctness", "alce_asqa"): 31.8, ("correctness", "alce_eli5"): 10.5}
    assert {e.tag for e in kn if e.dataset} == {"[SECONDARY]"}
    assert all("wizwand.com" in e.source for e in kn if e.dataset)
    assert all((e.model, e.method, e.variant) == ("llama2_7b", "cosup", "ntp+nsp") for e in kn)
    gains = {e.group: (e.gain, e.tag, e.baselines) for e in kn if e.group}
    assert gains == {"Avg": (14.2, "[PAPER]", ("cosup/separate",)),
                     "Out-of-domain": (6.6, "[PAPER]", ("cosup/separate",))}
    assert groups["knowledge"] == {
        "In-domain": ["kilt_nq", "kilt_fever", "kilt_wow", "alce_asqa"],
        "Out-of-domain": ["kilt_triviaqa", "kilt_hotpotqa", "kilt_eli5", "kilt_zsre",
                          "kilt_trex", "alce_eli5"]}
