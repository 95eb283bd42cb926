"""What reruns a job, in unit tests: each job's params hold what changes its output and nothing
else (repro.config), its code param tracks the modules it runs (repro.code_tracking), the local
files the config names are its inputs (repro.config_files), and settings the workflow would
ignore are errors naming the key. tests/test_rerun_table.py checks the same through Snakemake."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from repro import code_tracking as ct
from repro import config as rc
from repro import config_files as cf

ROOT = Path(__file__).resolve().parents[1]


def load(name: str = "test") -> dict:
    return rc.load_config(ROOT / "config" / f"{name}.yaml")


def run_of(cfg: dict, **fields) -> rc.Run:
    return next(r for r in rc.expand_runs(cfg)
                if all(getattr(r, k) == v for k, v in fields.items()))


def changed(cfg: dict, edit, params, runs=None) -> list:
    """The runs whose `params(cfg, run)` differ after `edit(copy of cfg)`."""
    other = copy.deepcopy(cfg)
    edit(other)
    return [r for r in runs or rc.expand_runs(cfg) if params(other, r) != params(cfg, r)]


# --- params --------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [
    ("save_steps", 99),
])
def test_training_settings_that_change_no_model_retrain_nothing(key, value):
    cfg = load()
    assert not changed(cfg, lambda c: c["training"].update({key: value}), rc.train_params)
    run = run_of(cfg, method="warmup")
    assert key not in json.loads(rc.train_params(cfg, run))["training"]
    assert rc.training_settings(cfg, run) == {key: cfg["training"][key]}


def test_eval_each_epoch_retrains_a_warmup_validation_samples_from_the_training_rng():
    cfg = load()
    assert changed(cfg, lambda c: c["training"].update(eval_each_epoch=False), rc.train_params)


def test_decode_options_change_decoding_only_and_train_options_training():
    cfg = load()

    def warmup(**opts):
        return lambda c: c["methods"]["warmup"].update(opts)

    warm = [r for r in rc.expand_runs(cfg) if r.method == "warmup"]
    assert not changed(cfg, warmup(decode_warmup="sample"), rc.train_params)
    assert changed(cfg, warmup(decode_warmup="sample"), rc.predict_params) == warm
    assert changed(cfg, warmup(n=3), rc.train_params) == warm
    assert not changed(cfg, warmup(n=3), rc.predict_params)
    values = {"max_retrievals": 5, "retrieve_first": True, "retrieval_scope": "corpus"}
    train_runs = rc.training_runs(cfg)
    separate = [r for r in train_runs if r.variant == "separate"]
    for option, value in values.items():
        def edit(c, option=option, value=value):
            c["methods"]["cosup"][option] = value

        assert not changed(cfg, edit, rc.train_params, train_runs), option
        assert not changed(cfg, edit, lambda c, r: rc.train_params(c, r, "embseq"), separate)
        assert {r.method for r in changed(cfg, edit, rc.predict_params)} == {"cosup"}


def test_languages_and_download_lists_rerun_nothing_but_scoring():
    cfg = load()
    pair = "t_en_xa"

    def lang(key, value):
        return lambda c: c["datasets"][pair].update({key: value})

    assert not changed(cfg, lang("target_lang", "zh"), rc.train_params)
    assert not changed(cfg, lang("target_lang", "zh"), rc.predict_params)
    assert {r.dataset for r in changed(cfg, lang("target_lang", "zh"), rc.evaluate_params)} \
        == {pair}
    for params in (rc.train_params, rc.predict_params, rc.evaluate_params):
        assert not changed(cfg, lang("source_lang", "de"), params)
    edited = copy.deepcopy(cfg)
    edited["datasets"][pair]["source"]["download"] = [{"url": "https://x/y", "to": "y"}]
    assert rc.dataset_params(edited, pair, "source") == rc.dataset_params(cfg, pair, "source")


def test_test_split_settings_are_the_test_filter_jobs_alone():
    cfg = load()
    pair = "t_en_xa"
    edited = copy.deepcopy(cfg)
    edited["datasets"][pair]["filter"]["caps"]["test"] = 5
    edited["datasets"][pair]["filter"]["expect_counts"] = {"test": 5}
    assert rc.dataset_params(edited, pair, "filter") == rc.dataset_params(cfg, pair, "filter")
    test = json.loads(rc.dataset_params(edited, pair, "filter_test"))
    assert test["filter"] == {"caps": {"test": 5}, "expect_counts": {"test": 5}}
    assert test["splits"] == ["test"]
    train = json.loads(rc.dataset_params(cfg, pair, "filter"))
    assert train["filter"]["caps"] == {"train": 100} and train["splits"] == ["train", "validation"]


def test_search_settings_are_decoding_params_not_index_params():
    cfg = load()
    kb = "t_kb"
    edited = copy.deepcopy(cfg)
    edited["datasets"][kb]["index"].update(kind="ivf", params={"nlist": 4, "nprobe": 2})
    other = copy.deepcopy(edited)
    other["datasets"][kb]["index"]["params"]["nprobe"] = 3
    assert rc.index_build_params(edited, kb) == rc.index_build_params(other, kb)
    assert json.loads(rc.index_build_params(edited, kb)) == {"kind": "ivf",
                                                             "params": {"nlist": 4}}
    run = run_of(cfg, dataset=kb, method="cosup")
    assert json.loads(rc.predict_params(other, run))["search"] == {"nprobe": 3}
    # a dataset with index.from searches with the settings of the index it uses
    unseen = run_of(cfg, dataset="t_kb_unseen", method="cosup")
    other["datasets"]["t_kb_unseen"]["index"] = {"from": kb}
    rc.validate_config(other)
    assert json.loads(rc.predict_params(other, unseen))["search"] == {"nprobe": 3}


def test_comet_gpus_and_interpreter_rescore_nothing():
    cfg = load()
    run = run_of(cfg, task="translation")
    edited = copy.deepcopy(cfg)
    edited["metrics"]["comet"].update(gpus=1, python="/opt/comet/bin/python")
    assert rc.comet_params(edited, run) == rc.comet_params(cfg, run)
    assert rc.evaluate_params(edited, run) == rc.evaluate_params(cfg, run)


# --- settings the workflow would ignore ----------------------------------------------------

def test_index_settings_beside_index_from_name_the_key():
    cfg = load()
    cfg["datasets"]["t_kb_unseen"]["index"] = {"from": "t_kb", "kind": "hnsw"}
    with pytest.raises(rc.ConfigError, match=r"datasets\.t_kb_unseen\.index\.kind: ignored "
                                             r"beside index\.from .*datasets\.t_kb\.index"):
        rc.validate_config(cfg)


def test_an_experiment_redefining_a_run_with_other_settings_names_the_key():
    cfg = load()
    again = copy.deepcopy(cfg["experiments"][2])  # t_en_xa, tiny_t5, warmup n2
    again["training"] = {"learning_rate": 0.5}
    cfg["experiments"].append(again)
    with pytest.raises(rc.ConfigError, match=r"experiments\[4\]\.training: run "
                                             r"translation/t_en_xa/tiny_t5/warmup/n2/seed0 is "
                                             r"already defined by experiments\[2\]"):
        rc.validate_config(cfg)
    again["training"] = {}
    again["methods"]["warmup"]["n2"] = {"n": 3}
    with pytest.raises(rc.ConfigError, match=r"experiments\[4\]\.methods\.warmup\.n2: run"):
        rc.validate_config(cfg)
    again["methods"]["warmup"]["n2"] = {}
    rc.validate_config(cfg)  # the same settings twice: nothing is ignored


# --- code ----------------------------------------------------------------------------------

def test_each_job_tracks_the_modules_it_runs():
    train_sft = ct.tracked_files("train", "sft")
    train_warmup = ct.tracked_files("train", "warmup")
    evaluate = ct.tracked_files("evaluate")
    assert "src/repro/methods/warmup.py" in train_warmup
    assert "src/repro/methods/warmup.py" not in train_sft
    assert "src/repro/methods/cosup.py" not in train_sft + train_warmup
    assert "src/repro/methods/sft.py" in ct.tracked_files("predict", "sft")
    assert "src/repro/metrics/mt.py" in evaluate
    assert not any("metrics/" in f for f in train_sft + ct.tracked_files("predict", "warmup"))
    assert "workflow_scripts/evaluate.py" in evaluate
    assert "workflow_scripts/_src_path.py" in evaluate
    # the DAG-time modules (config -> params) are no job's code: their effect is the params
    assert not any(f.endswith(("/config.py", "/resources.py", "/config_checks.py"))
                   for f in train_sft + evaluate)
    # a lazy import inside a function counts: repro.train imports torch-heavy code lazily
    assert "src/repro/train.py" in train_sft and "src/repro/train_cli.py" in train_sft


def test_code_hash_follows_content_not_place_or_mtime(tmp_path, monkeypatch):
    for part in ("src", "workflow_scripts"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    here = ct.script_code("evaluate")

    def code_of_copy() -> str:
        monkeypatch.setattr(ct, "SRC", tmp_path / "src")
        monkeypatch.setattr(ct, "SCRIPTS", tmp_path / "workflow_scripts")
        ct.clear_caches()
        return ct.script_code("evaluate")

    assert code_of_copy() == here  # another checkout, newer mtimes: the same code
    mt = tmp_path / "src" / "repro" / "metrics" / "mt.py"
    mt.write_text(mt.read_text() + "# edited\n")
    assert code_of_copy() != here
    monkeypatch.undo()
    ct.clear_caches()


def test_string_module_names_and_relative_imports_are_followed(tmp_path):
    pkg = tmp_path / "repro"
    pkg.mkdir()
    (tmp_path / "entry.py").write_text("import importlib\n"
                                       "importlib.import_module('repro.b')\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "b.py").write_text("def f():\n    from .c import g\n    return g\n")
    (pkg / "c.py").write_text("g = 1\n")
    (pkg / "d.py").write_text("")
    old = ct.SRC
    try:
        ct.SRC = tmp_path
        ct.clear_caches()
        names = {p.name for p in ct.closure(tmp_path / "entry.py")}
    finally:
        ct.SRC = old
        ct.clear_caches()
    assert names == {"entry.py", "__init__.py", "b.py", "c.py"}


# --- files the config names ----------------------------------------------------------------

def test_local_files_are_named_with_their_keys_and_hub_ids_are_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "new.pickle").write_text("x")
    (tmp_path / "models" / "m").mkdir(parents=True)
    (tmp_path / "models" / "m" / "config.json").write_text("{}")
    (tmp_path / "models" / "m" / ".cache").mkdir()
    (tmp_path / "models" / "m" / ".cache" / "x").write_text("")
    cfg = load()
    cfg["datasets"]["t_kb"]["source"] = {
        "kind": "local", "passages": "data/passages.jsonl",
        "splits": {"train": {"kind": "local", "file": "data/new.pickle",
                             "convert": "cosup_official", "ids2text": "data/ids2text.json",
                             "fallback": {"file": "data/old.jsonl"}},
                   "test": {"kind": "local", "file": "data/missing.pickle",
                            "fallback": {"file": "data/missing_too.jsonl"}}},
        "download": [{"url": "https://x", "to": "data/x"}]}
    named = cf.source_files(cfg, "t_kb")
    assert named == [
        ("datasets.t_kb.source.passages", "data/passages.jsonl"),
        ("datasets.t_kb.source.splits.train.file", "data/new.pickle"),
        ("datasets.t_kb.source.splits.train.ids2text", "data/ids2text.json"),
        ("datasets.t_kb.source.splits.test.file", "data/missing.pickle"),
    ]
    (tmp_path / "data" / "missing_too.jsonl").write_text("")  # the fallback is there: read it
    assert ("datasets.t_kb.source.splits.test.fallback.file", "data/missing_too.jsonl") in \
        cf.source_files(cfg, "t_kb")
    cfg["models"]["tiny_t5"] = {"kind": "hf", "family": "t5", "path": "models/m"}
    assert cf.paths(cf.model_files(cfg, "tiny_t5")) == ["models/m/config.json"]
    cfg["models"]["tiny_t5"]["path"] = "google/mt5-base"
    assert cf.model_files(cfg, "tiny_t5") == []
    lines = cf.missing_files(cf.source_files(cfg, "t_kb"), cfg)
    assert lines[0] == ("datasets.t_kb.source.passages: data/passages.jsonl does not exist "
                        "(scripts/predownload.py fetches the `download` files)")
    assert not any("missing_too" in line for line in lines)


def test_metric_and_checkpoint_paths_only_when_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load()
    cfg["metrics"]["true_nli"] = {"model": "./nli"}
    cfg["metrics"]["bertscore"]["model"] = "roberta-large"
    assert cf.metric_files(cfg, ["bertscore", "true_nli"]) == [("metrics.true_nli.model",
                                                                 "./nli")]
    others = rc.other_tasks_metrics("summarization")
    assert "true_nli" not in cf.evaluate_sections(cfg, others)
    opts = {"checkpoints": {"gen": "/ck/gen", "embseq": "org/embseq"}, "embseq_path": "~/e"}
    assert cf.option_files(opts, "methods.cosup", "decode") == [
        ("methods.cosup.checkpoints.gen", "/ck/gen")]
    assert cf.option_files(opts, "methods.cosup", "train") == [
        ("methods.cosup.embseq_path", "~/e")]
