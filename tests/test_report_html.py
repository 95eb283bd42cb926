"""`snakemake --report` on the completed test config, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import report_screenshot  # noqa: E402

pytestmark = pytest.mark.e2e
CONFIG = ROOT / "config" / "test.yaml"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
           str(work), "--configfile", str(CONFIG), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A work directory where the test config ran to the end (shared when the helper is)."""
    try:
        from workflow_runs import completed_run
    except ImportError:
        done = tmp_path_factory.mktemp("report_e2e")
        snakemake(done, "--cores", "2")
        return done
    return completed_run(tmp_path_factory, CONFIG)


@pytest.fixture(scope="module")
def report_html(work):
    out = work / "results" / "report.html"
    snakemake(work, "--report", str(out))
    return out


def test_report_rule_outputs(work):
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    tasks = {d["task"] for d in cfg["datasets"].values()}
    tables = work / "results/tables"
    for task in tasks:
        for suffix in (".md", ".tex", ".html", ".csv", "_cells.csv"):
            assert (tables / f"{task}{suffix}").stat().st_size > 100, (task, suffix)
        md = (tables / f"{task}.md").read_text(encoding="utf-8")
        assert "Provenance:" in md and "git commit:" in md
    tex = (tables / "translation.tex").read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex
    runs = sorted((work / "results/runs").glob("*/*/*/*/*/seed*"))
    for run in runs:
        rid = str(run.relative_to(work / "results/runs"))
        # a training curve per trained run (a dataset with train_on has none of its own)
        assert (work / f"results/plots/training/{rid}.png").is_file() == (run / "model").is_dir()
        cfg_json = json.loads((work / f"results/report/configs/{rid}.json").read_text())
        assert cfg_json["run"]["method"] == rid.split("/")[3]
    has_warmup = any("/warmup/" in str(r) for r in runs)
    assert (work / "results/plots/warmup_overlap.png").is_file() == has_warmup
    assert "filter statistics" in (work / "results/report/data.html").read_text()


def test_report_builds_self_contained(report_html):
    text = report_html.read_text(encoding="utf-8")
    assert report_html.stat().st_size > 100_000
    cats = json.loads(re.search(r"var categories = (\{.*?\});\n", text).group(1))
    assert {"Tables", "Plots", "Runs", "Data"} <= set(cats)
    assert "results/tables/translation.html" in cats["Tables"]["Translation"]
    assert any("training/" in p for p in cats["Plots"]["Training curves"])
    # nothing is fetched from the network when the page opens
    assert not re.search(r"<script[^>]+src=\"https?://", text)
    assert not re.search(r"<link[^>]+href=\"https?://", text)


@pytest.mark.skipif(report_screenshot.chromium() is None, reason="chromium not installed")
def test_report_opens_in_headless_chromium(report_html, tmp_path):
    dom = report_screenshot.render_dom(report_html)
    assert report_screenshot.check_dom(dom) == [], dom[-2000:]
    png = report_screenshot.screenshot(report_html, tmp_path / "report.png",
                                       open_result="tables/translation.html", size=(1200, 800))
    assert png.stat().st_size > 10_000
