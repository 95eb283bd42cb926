"""README's demo numbers are generated from one run (bench/excerpts.py), here on tables the
report writes for a small hand-made set of results."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from excerpts import REGION, commit_of, excerpts, fill_regions  # noqa: E402

from repro.report.write import write_task_tables  # noqa: E402

README = """# Demo

<!-- bench:demo-cost -->About 9 minutes (1 s)<!-- /bench:demo-cost --> at
<!-- bench:demo-commit -->an old commit<!-- /bench:demo-commit -->.

<!-- bench:translation-bleu -->
| old | table |
<!-- /bench:translation-bleu -->

Warmup wins: <!-- bench:mc-accuracy -->accuracy 1.0 against 2.0<!-- /bench:mc-accuracy -->.

<!-- bench:knowledge-excerpt -->
old
<!-- /bench:knowledge-excerpt -->
"""


def rec(task, dataset, model, method, variant, seed, metrics):
    return {"task": task, "dataset": dataset, "model": model, "method": method,
            "variant": variant, "seed": seed, "metrics": metrics}


def kn(c, r, p):
    return {"correctness": {"value": c}, "retrieval": {"value": r}, "r_precision": {"value": p}}


@pytest.fixture
def results(tmp_path):
    recs = [
        rec("translation", "xa", "tiny_t5", "sft", "default", 0, {"bleu": {"value": 58.93}}),
        rec("translation", "xb", "tiny_t5", "sft", "default", 0, {"bleu": {"value": 40.0}}),
        rec("translation", "xa", "tiny_t5", "warmup", "n2", 0, {"bleu": {"value": 41.5}}),
        rec("multiple_choice", "mc", "tiny_t5", "sft", "default", 0, {"accuracy": {"value": 57}}),
        rec("multiple_choice", "mc", "tiny_t5", "sft", "default", 1, {"accuracy": {"value": 58}}),
        rec("multiple_choice", "mc", "tiny_t5", "warmup", "n2", 0, {"accuracy": {"value": 59.5}}),
        rec("multiple_choice", "mc", "tiny_llama", "warmup", "n2", 0,
            {"accuracy": {"value": 10.0}}),
        rec("knowledge", "kb", "tiny_llama", "cosup", "ntp", 0, kn(2.5, 3.0, 0.0)),
        rec("knowledge", "kb", "tiny_llama", "cosup", "nsp", 0, kn(0.0, 40.0, 40.0)),
        rec("knowledge", "kb_unseen", "tiny_llama", "cosup", "ntp", 0, kn(2.0, 2.0, 0.0)),
    ]
    write_task_tables(recs, tmp_path / "tables", formats=("md", "csv", "cells"),
                      groups={"knowledge": {"In-domain": ["kb"]}})
    return tmp_path


def test_excerpts_of_one_run(results):
    parts = excerpts(results, {"seconds": 397.4, "peak_mib": 1365.0}, "abc123def456")
    assert parts["demo-commit"] == "commit `abc123def456`"
    assert parts["demo-cost"] == ("About 7 minutes on two cores (397 s measured, peak memory "
                                  "1.3 GiB)")
    bleu = parts["translation-bleu"].splitlines()
    assert bleu[0].startswith("| Model ") and len(bleu) == 2 + 2
    assert [c.strip() for c in bleu[3].strip("|").split("|")] == [
        "tiny_t5", "warmup", "n2", "41.50 (-17.43)", "-", "-"]
    assert parts["mc-accuracy"] == "accuracy 59.5 against 57.5"  # tiny_t5, mean over seeds
    table = parts["knowledge-excerpt"].splitlines()
    rp = "R-precision (not in paper)"
    assert table[0] == ("| Model | Method | Variant | Correctness (kb) | Retrieval (kb) | "
                        f"{rp} (kb) | Correctness (kb_unseen) | Retrieval (kb_unseen) | "
                        f"{rp} (kb_unseen) |")  # the datasets, not the averages
    assert table[2] == "| tiny_llama | cosup | ntp | 2.50 | 3.00 | 0.00 | 2.00 | 2.00 | 0.00 |"
    assert table[3] == ("| tiny_llama | cosup | nsp | 0.00 (-2.50) | 40.00 (+37.00) | "
                        "40.00 (+40.00) | - | - | - |")


def test_fill_regions_rewrites_blocks_and_inline_regions(results):
    parts = excerpts(results, {"seconds": 397.4, "peak_mib": 1365.0}, "abc123def456")
    text = fill_regions(README, parts)
    assert "old" not in text and "1.0 against" not in text
    assert "<!-- bench:demo-commit -->commit `abc123def456`<!-- /bench:demo-commit -->." in text
    assert f"<!-- bench:translation-bleu -->\n{parts['translation-bleu']}\n<!-- /bench" in text
    assert fill_regions(text, parts) == text  # idempotent
    assert text.startswith("# Demo\n\n") and text.count("<!-- bench:") == 5


def test_a_region_without_generated_text_stops():
    with pytest.raises(ValueError, match="README.md: no generated text for region.*mc-accuracy"):
        fill_regions(README, {"demo-cost": "", "demo-commit": "", "translation-bleu": "",
                              "knowledge-excerpt": ""}, "README.md")


def test_the_readme_regions_are_the_generated_ones():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = {m["name"] for m in REGION.finditer(text)}
    assert text.count("<!-- bench:") == len(names)  # every region is closed
    assert names == {"demo-cost", "demo-commit", "translation-bleu", "mc-accuracy",
                     "knowledge-excerpt"}


def test_commit_of_this_checkout():
    assert re.fullmatch(r"[0-9a-f]{12}(\+uncommitted changes)?", commit_of(ROOT))
