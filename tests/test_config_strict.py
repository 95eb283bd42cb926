"""A user's own config, as a new user writes it: every typo stops validation naming the key
(before any job), a missing local model directory is reported at validation, and a dry run of
such a config fails naming it."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from workflow_runs import load_yaml, snakemake, write_yaml

from repro import config as rc
from repro.config_checks import looks_local, model_path_problem

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


def fails(edit, message: str) -> None:
    cfg = copy.deepcopy(DEFAULT)
    edit(cfg)
    with pytest.raises(rc.ConfigError, match=f"^{re.escape(message)}"):
        rc.validate_config(cfg)


def local_source(**extra):
    return {"task": "translation", "source": {"kind": "local", "files": {"train": "a.tsv"},
                                              **extra}}


# ---- the typos, each named ----

def test_training_learning_rte():
    fails(lambda c: c["training"].update(learning_rte=3e-3),
          "config: training: Additional properties are not allowed ('learning_rte' was "
          "unexpected)")


def test_decoding_num_beam():
    fails(lambda c: c["decoding"].update(num_beam=3),
          "config: decoding: Additional properties are not allowed ('num_beam' was unexpected)")


def test_tokenizer_vocab_sise():
    fails(lambda c: c["models"]["tiny_t5"]["tokenizer"].update(vocab_sise=500),
          "config: models.tiny_t5.tokenizer: Additional properties are not allowed "
          "('vocab_sise' was unexpected)")


@pytest.mark.parametrize("source", [
    {"kind": "local", "files": {"train": "a.tsv"}, "colums": {"source": "en"}},
    {"kind": "hf", "path": "wmt/wmt14", "colums": {"source": "translation.en"}},
    {"kind": "synthetic", "generator": "translation", "colums": {}},
])
def test_source_colums_for_each_kind(source):
    fails(lambda c: c["datasets"].update(mine={"task": "translation", "source": source}),
          "config: datasets.mine.source: Additional properties are not allowed ('colums' was "
          "unexpected)")


def test_a_key_of_another_source_kind_is_refused():
    fails(lambda c: c["datasets"].update(mine=local_source(path="wmt/wmt14")),
          "config: datasets.mine.source: Additional properties are not allowed ('path' was "
          "unexpected)")


def test_split_override_key():
    fails(lambda c: c["datasets"].update(mine=local_source(splits={"test": {"fle": "b.tsv"}})),
          "config: datasets.mine.source.splits.test: 'fle' is not one of")


# ---- override sections and options, checked before any job ----

def test_override_sections_are_as_strict_as_their_section():
    fails(lambda c: c["datasets"]["synth_sum"].update(training={"learning_rte": 1e-3}),
          "config: datasets.synth_sum.training: Additional properties are not allowed "
          "('learning_rte' was unexpected)")
    fails(lambda c: c["models"]["tiny_t5"].update(training={"epoch": 3}),
          "config: models.tiny_t5.training: Additional properties are not allowed ('epoch'")
    fails(lambda c: c["experiments"][0]["methods"]["warmup"]["n2"].update(
        decoding={"num_beam": 1}),
        "config: experiments[0].methods.warmup.n2.decoding: Additional properties are not "
        "allowed ('num_beam' was unexpected)")
    fails(lambda c: c["experiments"][0]["methods"]["warmup"]["n2"].update(
        training={"learning_rate": "fast"}),
        "config: experiments[0].methods.warmup.n2.training.learning_rate: 'fast' is not of "
        "type 'number'")


def test_override_sections_get_no_defaults():
    """An override holds only what it sets (defaults in it would undo the layers below)."""
    cfg = copy.deepcopy(DEFAULT)
    rc.validate_config(cfg)
    assert cfg["datasets"]["synth_en_xa"]["training"] == {"epochs": 16}
    run = next(r for r in rc.expand_runs(cfg) if r.dataset == "synth_en_xa")
    assert rc.resolve(cfg, run)["training"]["learning_rate"] == 5.0e-3


def test_method_option_typo_names_the_method_variant_and_key():
    fails(lambda c: c["methods"]["warmup"].update(warmup_ln=4),
          "config: methods.warmup / variant 'n2' (run translation/synth_en_xa/tiny_t5/warmup/"
          "n2/seed0): warmup: unknown options ['warmup_ln']")
    fails(lambda c: c["experiments"][3]["methods"]["cosup"]["ntp"].update(nsp_wieght=1.0),
          "config: methods.cosup / variant 'ntp' (run knowledge/synth_kb/tiny_llama/cosup/ntp/"
          "seed0): cosup: unknown options ['nsp_wieght']")
    fails(lambda c: c["methods"].update(warmpu={}),
          "config: methods: 'warmpu' is not one of ['sft', 'warmup', 'cosup']")


def test_synthetic_option_typo():
    fails(lambda c: c["datasets"]["synth_sum"]["source"]["options"].update(n_trian=10),
          "config: datasets.synth_sum.source.options: synthetic summarization: unknown "
          "options ['n_trian']")


def test_unknown_report_and_metric_keys():
    fails(lambda c: c["report"].update(baseline="sft"),
          "config: report: Additional properties are not allowed ('baseline' was unexpected)")
    fails(lambda c: c["metrics"]["bertscore"].update(modle="x"),
          "config: metrics.bertscore: Additional properties are not allowed ('modle'")


# ---- local model directories ----

def hf_model(path: str) -> dict:
    return {"kind": "hf", "family": "t5", "path": path}


@pytest.mark.parametrize("path", ["./ckpt", "ckpt/", "../models/mine", "/no/such/dir"])
def test_missing_local_model_directory_is_reported_at_validation(path):
    fails(lambda c: c["models"].update(mine=hf_model(path)),
          f"config: models.mine.path: local model directory '{path}' does not exist")


def test_a_path_that_is_neither_a_directory_nor_a_hub_id():
    fails(lambda c: c["models"].update(mine=hf_model("my checkpoints/v1")),
          "config: models.mine.path: 'my checkpoints/v1' is neither an existing directory "
          "nor a hub id (owner/name)")


def test_existing_relative_directory_is_local_and_hub_ids_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    assert looks_local("ckpt") and model_path_problem("m", "ckpt") is None
    assert not looks_local("google/mt5-base") and model_path_problem("m", "google/mt5-base") \
        is None
    assert model_path_problem("m", "gpt2") is None


@pytest.mark.e2e
def test_dry_run_of_a_config_with_a_typo_names_it_and_runs_nothing(tmp_path):
    cfg = load_yaml()
    cfg["models"]["tiny_t5"]["tokenizer"]["vocab_sise"] = 300
    cfg["models"]["ckpt"] = hf_model("./ckpt")
    bad = write_yaml(tmp_path / "typo.yaml", cfg)
    out = snakemake(tmp_path / "work", "-n", config=bad, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert ("config: models.tiny_t5.tokenizer: Additional properties are not allowed "
            "('vocab_sise' was unexpected)") in text
    assert "Failed validating" not in text  # not the schema dump
    del cfg["models"]["tiny_t5"]["tokenizer"]["vocab_sise"]
    out = snakemake(tmp_path / "work", "-n", config=write_yaml(tmp_path / "ckpt.yaml", cfg),
                    check=False)
    assert out.returncode != 0
    assert ("config: models.ckpt.path: local model directory './ckpt' does not exist"
            in out.stdout + out.stderr)
    assert not (tmp_path / "work" / "results").exists()
