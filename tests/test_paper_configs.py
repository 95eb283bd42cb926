"""The paper configs: they validate, expand into the papers' runs, build their full DAGs offline
in seconds, fail early on a missing checkpoint, and list their downloads without fetching."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro import config as rc
from repro.base_model import prepare_base_model

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

# Runs: warmup = 8 directions x {sft, warmup} x 3 seeds + XSum 2 x 3 + LogiQA2 2 models x 2 x 3
# (66 main) + 13 ablation variants on de-en (n 4, warmup length 3, separator 3, loss 3); a COMET
# job per translation run (48 + 13).
# cosup = 10 test datasets x (4 main: separate, ntp+nsp, ntp, nsp + 3 lambda + 2 batch size
# + 2 Embseq) variants, one seed, trained once per variant on cosup_train (train_on): 11
# `train` jobs (Gen alone for `separate`) + 1 `train_embseq` (the Embseq of `separate`); one
# passage index per variant and test set over its pooled passages (8 shards for each KILT set,
# one for each ALCE set); the KILT pools: 16 shards of Contriever's precomputed embeddings
# converted (CPU jobs), one search per KILT set (its GPU encodes the questions:
# search_pools_gpu); every run's scoring loads the TRUE NLI model (span grounding):
# evaluate_nli, one GPU each.
# cosup released = the same 10 test sets and pools x 2 checkpoint pairs (separate, ntp+nsp): no
# base model, no training.
EXPECTED = {
    "paper_warmup.yaml": {"fetch": 10, "filter": 10, "filter_test": 10, "base_model_hub": 11,
                          "train": 79, "predict": 79, "comet": 61, "evaluate": 79, "report": 1,
                          "all": 1, "total": 341},
    "paper_cosup.yaml": {"fetch": 11, "filter": 11, "filter_test": 11, "base_model_hub": 1,
                         "train": 11, "train_embseq": 1, "pool_embeddings": 16,
                         "search_pools_gpu": 8, "embed_passages": 11 * (8 * 8 + 2),
                         "build_index": 11 * 10, "predict": 110, "evaluate_nli": 110,
                         "kilt_export": 110, "report": 1, "all": 1, "total": 1238},
    "paper_cosup_released.yaml": {"fetch": 10, "filter": 10, "filter_test": 10,
                                  "pool_embeddings": 16, "search_pools_gpu": 8,
                                  "embed_passages": 2 * (8 * 8 + 2), "build_index": 2 * 10,
                                  "predict": 20, "evaluate_nli": 20, "kilt_export": 20,
                                  "report": 1, "all": 1, "total": 268},
}


def placeholders(configfile: str, workdir: Path) -> list[str]:
    """Empty stand-ins in `workdir` for the local files and directories the config names (the
    data scripts/predownload.py fetches): they are the fetch and pool jobs' inputs, so a dry
    run without them stops naming them."""
    from repro.config_files import all_named

    cfg = rc.load_config(ROOT / "config" / configfile)
    made = []
    for key, path in all_named(cfg, rc.expand_runs(cfg) + rc.training_runs(cfg)):
        target = workdir / path
        if key.endswith(".precomputed"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        made.append(path)
    return made


def dry_run(configfile: str, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SNAKEMAKE), "-n", "--quiet", "rules", "--configfile",
         str(ROOT / "config" / configfile), "--directory", str(workdir), "--cores", "1"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
    )


def job_counts(configfile: str, workdir: Path) -> dict[str, int]:
    """Per-rule job counts of a dry run (`snakemake -n --quiet rules`) in `workdir`, where the
    files the config names are stand-ins."""
    placeholders(configfile, workdir)
    proc = dry_run(configfile, workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    table = text[text.index("Job stats:"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("configfile", sorted(EXPECTED))
def test_dag_job_counts_offline(configfile, tmp_path):
    start = time.monotonic()
    assert job_counts(configfile, tmp_path) == EXPECTED[configfile]
    assert time.monotonic() - start < 60  # seconds, not minutes; no network at DAG time


def test_missing_data_files_stop_the_dry_run_naming_key_and_file(tmp_path):
    """Before predownload, the dry run names each missing file with its config key and stops
    (the files are the fetch jobs' inputs), instead of failing jobs later."""
    proc = dry_run("paper_cosup.yaml", tmp_path)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert ("datasets.cosup_train.source.splits.train.file: "
            "data/cosup/natural_np_free.train.pickle does not exist (scripts/predownload.py"
            in text)
    assert "pools.wiki_contriever_msmarco.corpus.path: data/wiki/psgs_w100.tsv" in text
    assert "MissingInputException" in text


def test_warmup_config_runs():
    cfg = rc.load_config(ROOT / "config" / "paper_warmup.yaml")
    runs = rc.expand_runs(cfg)
    main = [r for r in runs if r.variant == "default"]
    assert len(main) == 66 and {r.seed for r in main} == {0, 1, 2}
    translation = {r.dataset for r in runs if r.task == "translation"}
    assert translation == {"de-en", "en-de", "fr-en", "en-fr", "ru-en", "en-ru", "zh-en", "en-zh"}
    assert {(r.dataset, r.model) for r in main if r.task != "translation"} == {
        ("xsum", "t5_base"), ("logiqa2", "t5_base"), ("logiqa2", "llama32_1b")}
    resolved = [rc.resolve(cfg, r) for r in runs if r.method == "warmup"]
    opts = [r["method"]["options"] for r in resolved]
    assert sorted({o["n"] for o in opts}) == [1, 2, 4, 6, 8]
    assert sorted({o["warmup_len"] for o in opts}) == [4, 8, 16, 32]
    assert {o["loss"] for o in opts} == {"target_mean", "joint", "reward_weighted", "reinforce"}
    assert len({o["separator"] for o in opts}) == 4
    from repro.methods.warmup import WarmupOptions

    for o in opts:  # every variant's options are ones the method accepts
        WarmupOptions.from_dict(o)
    r0 = resolved[0]
    assert (r0["training"]["learning_rate"], r0["training"]["epochs"]) == (2e-5, 10)
    assert r0["decoding"]["num_beams"] == 4
    assert cfg["datasets"]["en-zh"]["target_lang"] == "zh"
    gpus = {m: cfg["models"][m]["resources"] for m in cfg["models"]}
    assert gpus["llama32_1b"]["mem_mb"] > gpus["mt5_base"]["mem_mb"] > gpus["t5_base"]["mem_mb"]


def test_cosup_config_runs():
    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    runs = rc.expand_runs(cfg)
    assert {r.method for r in runs} == {"cosup"}
    assert len({r.dataset for r in runs}) == 10
    assert {r.dataset for r in rc.training_runs(cfg)} == {"cosup_train"}
    main = {r.variant for r in runs if r.dataset == "kilt_nq"}
    assert {"separate", "ntp", "nsp", "ntp+nsp"} <= main
    opts = [rc.resolve(cfg, r)["method"]["options"] for r in runs]
    assert sorted({o["nsp_weight"] for o in opts}) == [0.001, 0.01, 0.1, 1.0]
    paths = {m["path"] for m in cfg["models"].values()}
    assert {o.get("embseq_path") for o in opts} - {None} == paths - {"meta-llama/Llama-2-7b-hf"}
    from repro.methods.cosup import CoSupOptions

    for o in opts:  # every variant's options are ones the method accepts
        CoSupOptions.from_dict(o)
    assert cfg["models"]["llama2_7b"]["resources"]["gpu"] == 8
    # the KILT sets decode inside their top-100 Contriever-MSMARCO pools, as the official code
    kilt = [d for d in cfg["datasets"] if d.startswith("kilt_")]
    assert {cfg["datasets"][d]["pool"] for d in kilt} == {"wiki_contriever_msmarco"}
    pool = cfg["pools"]["wiki_contriever_msmarco"]
    assert (pool["k"], pool["retriever"]["path"]) == (100, "facebook/contriever-msmarco")
    assert {o["retrieval_scope"] for o in opts} == {"candidates"}


def test_released_config_tests_as_the_paper_config():
    """paper_cosup_released.yaml decodes and scores exactly as paper_cosup.yaml: the same test
    sets (without train_on), pools, decoding and metrics, and the prompt keys of training."""
    paper = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    released = rc.load_config(ROOT / "config" / "paper_cosup_released.yaml")
    for name, d in released["datasets"].items():
        assert d == {**paper["datasets"][name], "train_on": None}, name
    assert set(released["datasets"]) == set(paper["datasets"]) - {"cosup_train"}
    for key in ("pools", "decoding", "metrics"):
        assert released[key] == paper[key], key
    for key in ("prompt_template", "prompt_suffix", "max_source_len"):
        assert released["training"][key] == paper["training"][key], key
    decode_options = {k: v for k, v in released["methods"]["cosup"].items()}
    assert {k: paper["methods"]["cosup"][k] for k in decode_options} == decode_options


def test_cosup_config_scores_each_dataset_as_the_official_code():
    """eval_metric.py 1596-1704: correctness and retrieval per dataset, TRUE NLI, span AutoAIS."""
    from repro.metrics.evaluate import metric_choice

    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    runs = {r.dataset: r for r in rc.expand_runs(cfg) if r.variant == "ntp+nsp"}
    expected = {
        "kilt_nq": ("answer_in_output", "answer_in_retrieved"),
        "kilt_triviaqa": ("answer_in_output", "answer_in_retrieved"),
        "kilt_zsre": ("answer_in_output", "answer_in_retrieved"),
        "kilt_trex": ("answer_in_output", "answer_in_retrieved"),
        "kilt_hotpotqa": ("answer_in_output", "support_exist"),
        "kilt_fever": ("answer_in_output", "support_exist"),
        "kilt_wow": ("f1", "support_exist"),
        "kilt_eli5": ("rougeL", "support_exist"),
        "alce_asqa": ("str_em", "none"),
        "alce_eli5": ("claims_nli", "none"),
    }
    for dataset, (correctness, retrieval) in expected.items():
        m = rc.resolve(cfg, runs[dataset])["metrics"]
        assert metric_choice(m)[1:3] == (correctness, retrieval), dataset
        assert m["true_nli"]["model"] == "google/t5_xxl_true_nli_mixture"
        assert m["grounding"]["kind"] == "spans" and m["grounding"]["at_most_passages"] == 3
        assert (m["true_nli"]["max_length"], m["true_nli"]["max_new_tokens"]) == (1024, 10)


@pytest.mark.parametrize("configfile,model", [("paper_warmup.yaml", "mt5_base"),
                                              ("paper_cosup.yaml", "llama2_7b")])
def test_missing_checkpoint_fails_before_training_naming_the_key(tmp_path, monkeypatch,
                                                                 configfile, model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    cfg = rc.load_config(ROOT / "config" / configfile)
    with pytest.raises(rc.ConfigError, match=rf"models\.{model}\.path"):
        prepare_base_model(model, cfg["models"][model], tmp_path / "train.jsonl", tmp_path / "b")
    local = {**cfg["models"][model], "path": str(tmp_path / "no-such-dir")}
    with pytest.raises(rc.ConfigError, match=rf"models\.{model}\.path.*does not exist"):
        prepare_base_model(model, local, tmp_path / "train.jsonl", tmp_path / "b")


def test_predownload_list_mode_names_every_download():
    proc = subprocess.run(
        [sys.executable, "scripts/predownload.py", "--list", "config/paper_warmup.yaml",
         "config/paper_cosup.yaml", "config/paper_cosup_released.yaml"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("google/mt5-base", "google-t5/t5-base", "meta-llama/Llama-3.2-1B",
                   "meta-llama/Llama-2-7b-hf", "gpt2-large", "TinyLlama",
                   "wmt/wmt14 (de-en)", "wmt/wmt19 (zh-en)", "facebook/flores (zho_Hans-eng_Latn)",
                   "EdinburghNLP/xsum", "LogiQA2.0/955e1d3", "facebook/kilt_tasks (trex)",
                   "mandarjoshi/trivia_qa", "kaist-ai/ntp_nsp_cosupervision_train",
                   "ALCE-data.tar", "metrics.true_nli: google/t5_xxl_true_nli_mixture",
                   "nltk     punkt_tab", "psgs_w100.tsv.gz", "facebook/contriever-msmarco",
                   "contriever-msmarco/wikipedia_embeddings.tar",
                   "selfrag/selfrag_train_data", "kaist-ai/cosupervision-gen-Llama2_7b",
                   "kaist-ai/cosupervision-emb_seq-Llama2_7b",
                   "kaist-ai/separate_supervision-gen-Llama2_7b",
                   "kaist-ai/separate_supervision-emb_seq-Llama2_7b",
                   "tokenizer ntp+nsp.tokenizer: meta-llama/Llama-2-7b-hf"):
        assert needle in out, needle
    assert out.count("kaist-ai/ntp_nsp_cosupervision_train") == 1  # one download, ten datasets
    assert "split None" not in out  # a split a source does not have is not downloaded


def test_published_numbers_point_at_paper_config_runs():
    from repro.report.published import load_published

    entries, groups = load_published(ROOT / "config" / "published.yaml")
    runs = [r for c in EXPECTED for r in rc.expand_runs(rc.load_config(ROOT / "config" / c))]
    datasets, models = {r.dataset for r in runs}, {r.model for r in runs}
    for e in entries:
        assert e.model in models, e
        assert {e.dataset} - {None} <= datasets and set(e.datasets) <= datasets, e
        assert any(r.model == e.model and r.method == e.method
                   and e.variant in (None, r.variant) for r in runs), e
        for sel in e.baselines:
            method, _, variant = sel.partition("/")
            assert any(r.method == method and variant in ("", r.variant) for r in runs), sel
    assert all(set(ds) <= datasets for g in groups.values() for ds in g.values())
