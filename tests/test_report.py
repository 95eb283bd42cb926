"""The report stage on a hand-made results tree: marks, published rows, ablations, pages."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import yaml

from repro.io import write_json, write_jsonl
from repro.metrics.evaluate import evaluate_task
from repro.report.ablations import ablation_axes, ablation_points, axis_value
from repro.report.render import data_page, runs_page
from repro.report.warmup import (
    SEPARATOR_NOTE,
    warmup_analysis_frame,
    warmup_analysis_markdown,
    warmup_overlaps,
)
from repro.report.write import ReportOutputs, load_results, significance_pvalues, write_report
from repro.runs import Run

WORDS = "the a cat dog sat ran on under mat table red blue big small house tree".split()
N = 40


def sentence(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(8))


REFS = [{"id": f"t{i}", "source": f"src {i}", "target": sentence(i)} for i in range(N)]


def hyps(quality: float, seed: int) -> list[str]:
    """Hypotheses keeping the first `quality` share of each reference's words."""
    out = []
    for i, r in enumerate(REFS):
        words = r["target"].split()
        keep = int(len(words) * quality + (seed + i) % 2)
        out.append(" ".join(words[:keep] + ["zz"] * (len(words) - keep)))
    return out


def resolved(method: str, variant: str, seed: int, n: int | None = None) -> dict:
    options = {} if n is None else {"n": n, "warmup_len": 8}
    return {
        "run": {"task": "translation", "dataset": "a", "model": "m", "method": method,
                "variant": variant, "seed": seed},
        "data": {"task": "translation", "target_lang": "xa"},
        "method": {"name": method, "options": options},
        "training": {"batch_size": 8},
    }


RUNS = [
    # (method, variant, seed, quality, n)
    ("sft", "default", 0, 0.3, None),
    ("sft", "default", 1, 0.3, None),
    ("warmup", "n2", 0, 0.8, 2),
    ("warmup", "n2", 1, 0.8, 2),
    ("warmup", "n4", 0, 0.9, 4),
    ("warmup", "n4", 1, 0.3, 4),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """results/ with references, and per run metrics.json, predictions, train log, config."""
    root = tmp_path_factory.mktemp("rep")
    ref = root / "results/data/translation/a/test.jsonl"
    write_jsonl(ref, REFS)
    write_json(root / "results/data/translation/a/filter_stats.json",
               {"test": {"input": 45, "kept": 40, "dropped": {"duplicate": 5}}})
    files: dict[str, list[str]] = {"metrics": [], "logs": [], "preds": [], "configs": []}
    for method, variant, seed, quality, n in RUNS:
        run_dir = root / f"results/runs/translation/a/m/{method}/{variant}/seed{seed}"
        preds = [{"id": r["id"], "hypothesis": h} for r, h in zip(REFS, hyps(quality, seed),
                                                                   strict=True)]
        if method == "warmup":
            for p, r in zip(preds, REFS, strict=True):
                p["warmup"] = " ".join(r["target"].split()[:2] + ["qq"])
                p["separator_found"] = True
        metrics = evaluate_task("translation", preds, REFS, {"comet": {}})
        write_json(run_dir / "metrics.json", {
            "task": "translation", "n": N, "metrics": metrics,
            "run": resolved(method, variant, seed)["run"],
            "provenance": {"config_sha256": f"h{method}{variant}{seed}", "git_commit": "c0ffee",
                           "versions": {"sacrebleu": "2.6.0"}}})
        write_jsonl(run_dir / "predictions.jsonl", preds)
        write_jsonl(run_dir / "train_log.jsonl", [{"step": 1, "loss": 2.0}, {"step": 2,
                                                                              "loss": 1.5}])
        cfg = root / f"results/report/configs/translation/a/m/{method}/{variant}/seed{seed}.json"
        write_json(cfg, resolved(method, variant, seed, n))
        for key, path in (("metrics", run_dir / "metrics.json"),
                          ("logs", run_dir / "train_log.jsonl"),
                          ("preds", run_dir / "predictions.jsonl"), ("configs", cfg)):
            files[key].append(str(path))
    published = root / "published.yaml"
    published.write_text(yaml.safe_dump({"papers": {"w": {"tables": {"translation": [
        {"model": "m", "method": "warmup", "variant": "n2", "metric": "bleu", "dataset": "a",
         "value": 50.0, "source": "test source"}]}}}}), encoding="utf-8")
    return root, ref, files, published


def ink(png: Path) -> float:
    """Share of dark pixels of an image."""
    img = matplotlib.image.imread(png)
    return float((img[:, :, :3] < 0.5).mean())


def test_axis_value():
    cfg = resolved("warmup", "n2", 0, 2)
    assert axis_value(cfg, {"path": "method.options.n", "methods": ["warmup"]}) == 2
    assert axis_value(cfg, {"path": "training.batch_size"}) == 8
    # unset for a method the axis applies to: its default; other methods: not on the axis
    bare = resolved("warmup", "default", 0)
    assert axis_value(bare, {"path": "method.options.n", "methods": ["warmup"],
                             "default": 4}) == 4
    assert axis_value(resolved("sft", "default", 0),
                      {"path": "method.options.n", "methods": ["warmup"], "default": 4}) is None
    assert axis_value(cfg, {"path": "method.options.lambda"}) is None


def test_ablation_axes_need_two_values_in_one_group():
    runs = [resolved(m, v, s, n) for m, v, s, _, n in RUNS]
    names = [a["name"] for a in ablation_axes(runs)]
    assert names == ["n"]  # batch size is the same everywhere, lambda/embseq never set
    # two values, but in different datasets: not an ablation
    other = resolved("warmup", "x", 0, 8)
    other["run"]["dataset"] = "b"
    assert [a["name"] for a in ablation_axes([runs[2], other])] == []
    assert ablation_axes(runs, [{"name": "bs", "path": "training.batch_size"}]) == []


def test_ablation_points(tree):
    root, _, files, _ = tree
    results = load_results(files["metrics"])
    configs = {p.split("configs/", 1)[1][:-5]: json.loads(Path(p).read_text())
               for p in files["configs"]}
    axis = {"name": "n", "path": "method.options.n", "methods": ["warmup"]}
    points, bases = ablation_points(results, configs, axis, [axis])
    assert sorted(p["x"] for p in points) == [2, 2, 4, 4]
    assert {p["series"] for p in points} == {"m · warmup"}
    assert [b["label"] for b in bases] == ["m · sft", "m · sft"]


def test_significance_pvalues(tree):
    root, ref, files, _ = tree
    results = load_results(files["metrics"])
    preds = {p.split("runs/", 1)[1].rsplit("/", 1)[0]: [json.loads(x) for x in open(p)]
             for p in files["preds"]}
    refs = {("translation", "a"): REFS}
    pv = significance_pvalues(results, preds, refs, "sft", n_samples=200)
    n2, n4 = ("m", "warmup", "n2"), ("m", "warmup", "n4")
    assert pv[(n2, "bleu", "a")] < 0.05 and pv[(n2, "chrf", "a")] < 0.05  # 0.8 vs 0.3 kept
    assert set(pv) == {(r, m, "a") for r in (n2, n4) for m in ("bleu", "chrf")}
    # a run whose predictions no longer give its reported score is left out of the test
    stale = [dict(r) for r in results]
    for r in stale:
        if r["variant"] == "n2":
            r["metrics"] = {**r["metrics"], "bleu": {**r["metrics"]["bleu"], "value": 1.0}}
    pv2 = significance_pvalues(stale, preds, refs, "sft", n_samples=200)
    assert (n2, "bleu", "a") not in pv2 and (n2, "chrf", "a") in pv2


def test_warmup_overlaps(tree):
    root, _, files, _ = tree
    results = load_results(files["metrics"])
    preds = {p.split("runs/", 1)[1].rsplit("/", 1)[0]: [json.loads(x) for x in open(p)]
             for p in files["preds"]}
    ov = warmup_overlaps(results, preds, {("translation", "a"): REFS})
    assert set(ov) == {("translation", f"a · m · warmup · {v}") for v in ("n2", "n4")}
    vals = ov[("translation", "a · m · warmup · n2")]
    assert len(vals) == 2 * N  # pooled over both seeds
    assert all(v == pytest.approx(200 / 3) for v in vals)  # 2 of 3 warmup words in the ref


def test_warmup_analysis_table_rows_are_warmup_runs():
    base = {"task": "translation", "dataset": "a", "model": "m", "seed": 0, "n": 3}
    results = [
        {**base, "method": "sft", "variant": "default", "analysis": {}},
        {**base, "method": "warmup", "variant": "n2", "analysis": {
            "warmup_word_overlap": {"value": 41.5, "n": 3}, "warmup_exact_phrase": {"value": 0.0},
            "warmup_empty": {"value": 33.3}, "warmup_no_separator": {"value": 100.0}}},
    ]
    frame = warmup_analysis_frame(results)
    assert list(frame["variant"]) == ["n2"] and frame.iloc[0]["examples"] == 3
    assert frame.iloc[0]["Warmup words in reference (%)"] == 41.5
    md = warmup_analysis_markdown(frame)
    assert "| 41.5 " in md and "| 100.0 " in md and "No warmup runs" not in md
    assert "No warmup runs" in warmup_analysis_markdown(warmup_analysis_frame(results[:1]))


def test_pages(tree):
    root, _, files, _ = tree
    results = load_results(files["metrics"])
    page = runs_page(results, {"translation/a/m/sft/default/seed0": {"training": {"lr": 1}}})
    assert page.startswith("<!doctype html>") and "hsftdefault0" in page and "c0ffee" in page
    assert ">skipped</td>" in page  # COMET could not be computed, reason on hover
    assert "&quot;lr&quot;: 1" in page
    d = data_page({"translation/a": {"test": {"input": 45, "kept": 40,
                                               "dropped": {"duplicate": 5}}}})
    assert "dropped: duplicate" in d and ">45<" in d


def test_write_report(tree):
    root, ref, files, published = tree
    out = root / "out"
    outputs = ReportOutputs(
        tables_dir=out / "tables", main_plot=out / "plots/main.png",
        curves_plot=out / "plots/curves.png",
        run_curves={"translation/a/m/sft/default/seed0": out / "plots/run0.png"},
        ablation_plots={"n": out / "plots/ablation_n.png"},
        warmup_plot=out / "plots/warmup.png", runs_page=out / "runs.html",
        data_page=out / "data.html")
    axis = {"name": "n", "path": "method.options.n", "methods": ["warmup"],
            "label": "Warmup samples n (count)"}
    written = write_report(
        files["metrics"], files["logs"], outputs, prediction_paths=files["preds"],
        reference_paths=[ref], config_paths=files["configs"],
        filter_stats_paths=[str(root / "results/data/translation/a/filter_stats.json")],
        published=published, ablations=[axis], n_samples=200)
    assert all(Path(p).is_file() for p in written)
    for png in ("main", "curves", "run0", "ablation_n", "warmup"):
        assert (out / f"plots/{png}.pdf").is_file()
        assert ink(out / f"plots/{png}.png") > 0.015, png  # axes drawn, not a bare title
    assert Run.from_path("results/report/configs/translation/a/m/sft/default/seed0.json").id == \
        "translation/a/m/sft/default/seed0"
    md = (out / "tables/translation.md").read_text(encoding="utf-8")
    assert "†" in md and "paired bootstrap" in md and "200 resamples" in md
    assert "| published |" in md and "[2] published: test source" in md
    assert "git commit: `c0ffee`" in md and "`nrefs:1|case:mixed" in md
    tex = (out / "tables/translation.tex").read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"$^\dagger$" in tex
    tidy = pd.read_csv(out / "tables/translation.csv")
    assert len(tidy) == 6 * 3 and set(tidy["git_commit"]) == {"c0ffee"}
    cells = pd.read_csv(out / "tables/translation_cells.csv")
    n2 = cells[(cells["variant"] == "n2") & (cells["metric"] == "BLEU")].iloc[0]
    assert n2["p_value"] < 0.05 and n2["published_value"] == 50.0
    assert n2["diff_value"] == pytest.approx(n2["mean"] - 50.0)
    # no significance test asked for: no marks
    write_report(files["metrics"], files["logs"], ReportOutputs(out / "t2", out / "m.png",
                                                                out / "c.png"),
                 prediction_paths=files["preds"], reference_paths=[ref], n_samples=0)
    assert "†" not in (out / "t2/translation.md").read_text(encoding="utf-8")


def test_warmup_analysis_says_the_separator_is_appended():
    base = {"task": "translation", "dataset": "a", "model": "m", "seed": 0, "n": 3,
            "method": "warmup", "variant": "n2"}
    frame = warmup_analysis_frame([{**base, "analysis": {"warmup_no_separator": {"value": 100.0}}}])
    md = warmup_analysis_markdown(frame)
    assert "Separator appended, not generated (%)" in md and SEPARATOR_NOTE in md
    assert "by design" in SEPARATOR_NOTE and "not a failure" in SEPARATOR_NOTE


def test_ablation_series_name_the_other_settings_that_vary():
    """Points of a panel that differ in another axis get it in their series label."""
    axes = [{"name": "n", "path": "method.options.n", "methods": ["warmup"]},
            {"name": "len", "path": "method.options.warmup_len", "methods": ["warmup"]}]
    results, configs = [], {}
    for seed, (n, length) in enumerate([(2, 8), (4, 8), (2, 16), (4, 16)]):
        cfg = resolved("warmup", f"v{seed}", 0, n)
        cfg["method"]["options"]["warmup_len"] = length
        run = cfg["run"]
        results.append({**run, "metrics": {"bleu": {"value": 10.0 + seed}}})
        configs[Run.from_record(run).id] = cfg
    points, bases = ablation_points(results, configs, axes[0], axes)
    assert [(p["x"], p["series"]) for p in points] == [
        (2, "m · warmup · len=8"), (4, "m · warmup · len=8"),
        (2, "m · warmup · len=16"), (4, "m · warmup · len=16")]
    assert bases == [] and [p["value"] for p in points] == [10.0, 11.0, 12.0, 13.0]
