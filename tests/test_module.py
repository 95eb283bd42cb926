"""The workflow as a Snakemake user meets it: used as a module from another directory
(`module ... use rule * from ...`), run from elsewhere with `--directory`, and each config
writing under its own results root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_runs import (
    ENV,
    ROOT,
    TEST_CONFIG,
    load_yaml,
    planned_jobs,
    pretrain_on_kept_datasets,
    write_yaml,
)

from repro.runs import default_results_dir

pytestmark = pytest.mark.e2e

MODULE_SNAKEFILE = """configfile: "config/config.yaml"


module repro:
    snakefile: "{snakefile}"
    config: config


use rule * from repro as repro_*
"""


def user_workflow(tmp_path: Path) -> Path:
    """A workflow of the user's own in tmp_path that uses this one as a module, with a tiny
    config (the test config without its results root) as its config/config.yaml."""
    work = tmp_path / "mine"
    cfg = load_yaml()
    del cfg["results_dir"]
    cfg["datasets"] = {"t_mc": cfg["datasets"]["t_mc"]}
    cfg["experiments"] = [{"datasets": ["t_mc"], "models": ["tiny_t5"],
                           "methods": {"sft": {"default": {}}}}]
    cfg["models"] = {"tiny_t5": cfg["models"]["tiny_t5"]}
    (work / "config").mkdir(parents=True)
    write_yaml(work / "config" / "config.yaml", pretrain_on_kept_datasets(cfg))
    (work / "Snakefile").write_text(MODULE_SNAKEFILE.format(snakefile=ROOT / "Snakefile"))
    return work


def run(work: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    # PYTHONPATH unset: the rules find this workflow's src/ themselves
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_used_as_a_module_from_another_directory(tmp_path):
    work = user_workflow(tmp_path)
    jobs = planned_jobs(run(work, "-n").stdout)
    rules = {rule for rule, _ in jobs}
    assert {"repro_fetch", "repro_filter", "repro_base_model", "repro_train", "repro_predict",
            "repro_evaluate", "repro_report"} <= rules
    # a few jobs for real: the dataset's data, in the user's directory (its config is named
    # config.yaml: results/)
    stats = "results/data/multiple_choice/t_mc/filter_stats.json"
    run(work, stats)
    assert (work / stats).is_file()
    assert (work / "results/data/multiple_choice/t_mc/raw/test.jsonl").is_file()
    assert not (ROOT / "results" / "data" / "multiple_choice" / "t_mc").exists()


def test_run_from_elsewhere_with_the_embedded_default(tmp_path):
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(tmp_path), "-n", "--quiet", "rules"],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"^train\s+\d+$", out.stdout, re.M)


def test_each_config_gets_its_own_results_root(tmp_path):
    cfg = load_yaml()
    del cfg["results_dir"]
    mine = write_yaml(tmp_path / "my_data.yaml", cfg)
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(tmp_path / "work"), "--configfile", str(mine),
                          "-n"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    outputs = re.findall(r"^\s+output: (.*)$", out.stdout, re.M)
    paths = [p for line in outputs for p in line.split(", ")]
    assert paths and all(p.startswith("results/my_data/") for p in paths), paths[:5]
    assert "results/my_data/tables/translation.md" in paths
    assert "results/my_data/logs/report.log" in out.stdout


def test_default_results_root_from_the_config_files():
    assert default_results_dir([]) == "results"
    assert default_results_dir(["config/config.yaml"]) == "results"
    assert default_results_dir(["/x/config/paper_warmup.yaml"]) == "results/paper_warmup"
    assert default_results_dir(["a/mine.yaml", "site.yml"]) == "results/mine+site"
    assert load_yaml(TEST_CONFIG)["results_dir"] == "results"  # the tests' copies share it


def test_no_workflow_basedir_for_files_of_this_workflow():
    """workflow.basedir is the directory of the *main* Snakefile: a module's files must be
    found from its own rule files (workflow.current_basedir, workflow.source_path)."""
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        assert "workflow.basedir" not in path.read_text(encoding="utf-8"), path
