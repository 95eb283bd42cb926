"""The rerun table: on a completed run of a small config that has every section (local data
files, a candidate pool, a local model directory, a local metric model, sft, warmup and both
co-supervision trainings), the exact jobs `snakemake -n` plans after each edit: one config key,
one file the config names, one library module, or only the mtimes of the code.

The workflow runs from a copy of the repository (so that editing a library module touches
nothing of the real one) with its default profile, hence its `rerun-triggers`."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_runs import ENV, job, planned_jobs, run_jobs

from repro import config as rc
from repro.runs import Run

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "rules", "workflow_scripts", "src", "config", "profiles", "report", "envs")
SPLITS = ("train", "validation", "test")
REPORT = job("report")


# --- the config and its completed run ------------------------------------------------------

def small_config() -> dict[str, Any]:
    """Translation from local files (sft, warmup), summarization scored by a local BERTScore
    model, a knowledge set with a candidate pool (co-supervision ntp+nsp and separate)."""
    small = {"n_validation": 6, "n_test": 6}
    return {
        "offline": True,
        "results_dir": "results",  # the same root for the edited copies of the config
        "datasets": {
            "tr": {"task": "translation", "source_lang": "en", "target_lang": "xa",
                   "source": {"kind": "local", "format": "jsonl",
                              "files": {s: f"data/tr/{s}.jsonl" for s in SPLITS},
                              "download": [{"url": "https://example.org/tr.tar",
                                            "to": "data/tr.tar"}]},
                   "filter": {"max_source_words": 40, "caps": {"train": 60}}},
            "sm": {"task": "summarization",
                   "source": {"kind": "synthetic", "generator": "summarization",
                              "options": {"n_train": 40, **small}, "seed": 2}},
            "kb": {"task": "knowledge", "pool": "wiki",
                   "index": {"kind": "ivf", "params": {"nlist": 2, "nprobe": 1}},
                   "source": {"kind": "synthetic", "generator": "knowledge",
                              "options": {"n_train": 40, **small, "n_people": 60,
                                          "n_companies": 20}, "seed": 4}},
        },
        "pools": {"wiki": {"corpus": {"format": "psgs_w100", "path": "data/wiki/psgs_w100.tsv"},
                           "retriever": {"path": "./models/retriever", "batch_size": 8},
                           "k": 2}},
        "models": {
            "t5": {"kind": "hf", "family": "t5", "path": "./models/t5",
                   "resources": {"mem_mb": 1000, "runtime": 10}},
            "llama": {"kind": "tiny", "family": "llama",
                      "config": {"hidden_size": 32, "intermediate_size": 64,
                                 "num_hidden_layers": 1, "num_attention_heads": 4,
                                 "num_key_value_heads": 2},
                      "tokenizer": {"vocab_size": 300},
                      "resources": {"mem_mb": 1000, "runtime": 10}},
        },
        "experiments": [
            {"datasets": ["tr"], "models": ["t5"],
             "methods": {"sft": {"default": {}}, "warmup": {"n2": {}}}},
            {"datasets": ["sm"], "models": ["t5"], "methods": {"sft": {"default": {}}}},
            {"datasets": ["kb"], "models": ["llama"],
             "methods": {"cosup": {"separate": {}, "ntp+nsp": {}}}},
        ],
        "methods": {"warmup": {"n": 2, "num_beams": 2, "warmup_len": 4},
                    "cosup": {"max_passage_len": 32, "max_retrievals": 1}},
        "training": {"learning_rate": 1.0e-3, "epochs": 1, "batch_size": 16,
                     "max_source_len": 64, "max_target_len": 32, "save_steps": 4},
        "decoding": {"num_beams": 2, "max_new_tokens": 8, "batch_size": 16},
        "metrics": {"bertscore": {"model": "./models/bertscore", "num_layers": 2}},
        "report": {"bootstrap_samples": 10},
    }


def write_inputs(work: Path) -> None:
    """The files the config names: translation splits, the pool's corpus, the t5 checkpoint, the
    retriever and the BERTScore model (tiny BERTs)."""
    from tiny_models import build_bert

    from repro.data.synthetic import generate
    from repro.io import write_jsonl
    from repro.models import build_tiny

    data = generate("translation", {"pair": "en-xa", "n_train": 80, "n_validation": 6,
                                    "n_test": 6}, 1)
    for split in SPLITS:
        write_jsonl(work / "data" / "tr" / f"{split}.jsonl", data.splits[split])
    psgs = work / "data" / "wiki" / "psgs_w100.tsv"
    psgs.parent.mkdir(parents=True)
    shutil.copyfile(ROOT / "tests" / "data" / "pools" / "psgs_w100.tsv", psgs)
    summaries = generate("summarization", {"n_train": 40, "n_validation": 6, "n_test": 6}, 2)
    texts = [t for r in data.splits["train"] + summaries.splits["train"]
             for t in (r["source"], r["target"])] + [" || "] * 20
    build_tiny("t5", {"family": "t5", "config": {"d_model": 16, "d_kv": 4, "d_ff": 32,
                                                 "num_layers": 1, "num_decoder_layers": 1,
                                                 "num_heads": 2},
                      "tokenizer": {"vocab_size": 300}}, texts, work / "models" / "t5")
    questions = [r["source"] for r in generate("knowledge", small_config()["datasets"]["kb"][
        "source"]["options"], 4).splits["test"]]
    build_bert(work / "models" / "retriever", psgs.read_text(encoding="utf-8").split("\n") +
               questions)
    bert = build_bert(work / "models" / "bertscore", texts)
    tok_cfg = bert / "tokenizer_config.json"  # bert-score truncates at model_max_length
    tok_cfg.write_text(json.dumps({**json.loads(tok_cfg.read_text(encoding="utf-8")),
                                   "model_max_length": 512}), encoding="utf-8")


def copy_repository(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(repo: Path, work: Path, config: Path, *args: str,
              check: bool = True) -> subprocess.CompletedProcess:
    """Snakemake of the copied repository (its default profile applies), as a user runs it."""
    env = {**ENV, "PYTHONPATH": str(repo / "src")}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
           str(work), "--configfile", str(config), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}")
    return proc


def allow_retraining(work: Path) -> None:
    """Trained models are write-protected (a plan that retrains one stops naming it, unless
    you run as root); make them writable as a user who accepts the retraining does, so that
    the dry runs list every job they plan."""
    for out in (work / "results" / "runs").rglob("*"):
        if out.name in ("model", "embseq") and out.is_dir():
            for path in (out, *out.rglob("*")):
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


class Completed:
    """The copied repository, the work directory of the completed run and its config."""

    def __init__(self, root: Path) -> None:
        self.repo = copy_repository(root / "repo")
        self.work = root / "work"
        self.work.mkdir()
        write_inputs(self.work)
        self.config = self.write(small_config(), "config.yaml")
        with contextlib.chdir(self.work):  # local paths are read from the working directory
            self.runs = rc.expand_runs(rc.load_config(self.config))
        start = time.monotonic()
        snakemake(self.repo, self.work, self.config)
        self.build_seconds = time.monotonic() - start
        allow_retraining(self.work)

    def write(self, cfg: dict[str, Any], name: str) -> Path:
        path = self.work.parent / name
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        return path

    def plan(self, config: Path | None = None) -> set:
        out = snakemake(self.repo, self.work, config or self.config, "-n").stdout
        return planned_jobs(out)


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Completed:
    return Completed(tmp_path_factory.mktemp("rerun_table"))


# --- expected job sets ---------------------------------------------------------------------

def runs_where(done: Completed, **fields: Any) -> list[Run]:
    return [r for r in done.runs if all(getattr(r, k) == v for k, v in fields.items())]


def evaluate_jobs(runs: list[Run]) -> set:
    """The evaluate job of each run (not the KILT export: it reads no metric setting)."""
    return {job("evaluate", **r.fields()) for r in runs}


def decode_jobs(runs: list[Run]) -> set:
    """predict, evaluate (and kilt_export) of each run."""
    return {j for r in runs for j in run_jobs(r, ("predict", "evaluate"))}


def index_jobs(runs: list[Run]) -> set:
    """The passage index of each co-supervision run: one embedding shard and the index."""
    out = set()
    for r in runs:
        out.add(job("embed_passages", **r.fields(), shard=0, shards=1))
        out.add(job("build_index", **r.fields()))
    return out


def train_jobs(runs: list[Run], stages: tuple[str, ...] = ("train",)) -> set:
    """train of each run (and train_embseq for `separate`'s Embseq when in `stages`)."""
    out = set()
    for r in runs:
        for rule in stages:
            if rule == "train_embseq" and r.variant != "separate":
                continue
            out.add(job(rule, **r.fields()))
    return out


def data_jobs(task: str, dataset: str, rules: tuple[str, ...]) -> set:
    return {job(rule, task=task, dataset=dataset) for rule in rules}


def whole_run(runs: list[Run]) -> set:
    """Everything of the runs from training on (index included for co-supervision)."""
    cosup = [r for r in runs if r.method == "cosup"]
    return (train_jobs(runs, ("train", "train_embseq")) | index_jobs(cosup)
            | decode_jobs(runs))


def expected(done: Completed, key: str) -> set:
    """The jobs an edit of `key` must plan (the rerun table)."""
    tr, sm = runs_where(done, dataset="tr"), runs_where(done, dataset="sm")
    kb = runs_where(done, dataset="kb")
    warm = runs_where(done, method="warmup")
    sep, joint = runs_where(done, variant="separate"), runs_where(done, variant="ntp+nsp")
    t5_tr = {job("base_model_hub", model="t5", dataset="tr")}  # kind hf: a local rule
    after_pool = (data_jobs("knowledge", "kb", ("filter_test",)) | index_jobs(kb)
                  | decode_jobs(kb))
    table = {
        # datasets.*.source: the dataset from its fetch on; `download` is predownload's
        "datasets.tr.source.lenient": data_jobs("translation", "tr", (
            "fetch", "filter", "filter_test")) | t5_tr | whole_run(tr),
        "datasets.tr.source.download": set(),
        "datasets.tr.source_lang": set(),
        "datasets.tr.target_lang": evaluate_jobs(tr),
        # filter: the training splits' settings retrain, the test split's do not
        "datasets.tr.filter.max_source_words": data_jobs("translation", "tr", ("filter",))
        | t5_tr | whole_run(tr),
        "datasets.tr.filter.caps.test": data_jobs("translation", "tr", ("filter_test",))
        | decode_jobs(tr),
        # index: build-time settings rebuild the index (from new embeddings: the shards are
        # temp()), search-time ones decode again
        "datasets.kb.index.params.nlist": index_jobs(kb) | decode_jobs(kb),
        "datasets.kb.index.params.nprobe": decode_jobs(kb),
        "datasets.kb.index.batch_size": index_jobs(kb) | decode_jobs(kb),
        # training: every training; save_steps changes no model
        "training.learning_rate": whole_run(done.runs),
        "training.save_steps": set(),
        "training.eval_each_epoch": whole_run(done.runs),
        "decoding.num_beams": decode_jobs(done.runs),
        # method options, per stage
        "methods.warmup.n": whole_run(warm),
        "methods.warmup.decode_warmup": decode_jobs(warm),
        "methods.cosup.nsp_weight": train_jobs(joint) | train_jobs(sep, ("train_embseq",))
        | index_jobs(kb) | decode_jobs(kb),
        "methods.cosup.mask_passage": train_jobs(kb) | index_jobs(joint) | decode_jobs(kb),
        "methods.cosup.max_retrievals": decode_jobs(kb),
        "methods.cosup.insert_template": whole_run(kb),
        # metrics: the evaluate jobs of the tasks that read the section
        "metrics.bertscore.batch_size": evaluate_jobs(sm),
        "metrics.strict": evaluate_jobs(done.runs),
        "metrics.comet.gpus": set(),
        # models: identity rebuilds the base model; resources change nothing
        "models.llama.config.intermediate_size": {job("base_model", model="llama",
                                                      dataset="kb")} | whole_run(kb),
        "models.t5.resources.mem_mb": set(),
        # pools: the test split of the pooled dataset and what decodes it, never a training
        "pools.wiki.k": {job("search_pools", pool="wiki", dataset="kb")} | after_pool,
        "pools.wiki.retriever.query_batch_size": {job("search_pools", pool="wiki",
                                                      dataset="kb")} | after_pool,
        "pools.wiki.resources.mem_mb": set(),
        # report: the report alone
        "report.bootstrap_samples": set(),
        "report.groups": set(),
    }
    jobs = table[key]
    return jobs | {REPORT} if jobs or key.startswith("report.") else jobs


EDITS: dict[str, Any] = {
    "datasets.tr.source.lenient": True,
    "datasets.tr.source.download": [{"url": "https://example.org/other.tar", "to": "data/x"}],
    "datasets.tr.source_lang": "de",
    "datasets.tr.target_lang": "zh",
    "datasets.tr.filter.max_source_words": 30,
    "datasets.tr.filter.caps.test": 4,
    "datasets.kb.index.params.nlist": 3,
    "datasets.kb.index.params.nprobe": 2,
    "datasets.kb.index.batch_size": 4,
    "training.learning_rate": 2.0e-3,
    "training.save_steps": 50,
    "training.eval_each_epoch": False,
    "decoding.num_beams": 3,
    "methods.warmup.n": 3,
    "methods.warmup.decode_warmup": "sample",
    "methods.cosup.nsp_weight": 0.5,
    "methods.cosup.mask_passage": False,
    "methods.cosup.max_retrievals": 2,
    "methods.cosup.insert_template": "{title}: {text}",
    "metrics.bertscore.batch_size": 8,
    "metrics.strict": True,
    "metrics.comet.gpus": 1,
    "models.llama.config.intermediate_size": 48,
    "models.t5.resources.mem_mb": 2000,
    "pools.wiki.k": 3,
    "pools.wiki.retriever.query_batch_size": 2,
    "pools.wiki.resources.mem_mb": 9000,
    "report.bootstrap_samples": 20,
    "report.groups": {"translation": {"Pairs": ["tr"]}},
}


def edited(cfg: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    *parents, last = key.split(".")
    node = out
    for k in parents:
        node = node.setdefault(k, {})
    node[last] = value
    return out


def label(j) -> str:
    rule, wildcards = j
    w = dict(wildcards)
    run = "/".join(w[k] for k in ("dataset", "variant", "method") if k in w)
    return f"{rule}({run})" if run else rule


# --- the table -----------------------------------------------------------------------------

def test_nothing_changed_plans_nothing(done):
    assert done.plan() == set()


def test_each_config_key_plans_exactly_the_jobs_it_touches(done):
    """One dry run per key: the planned jobs equal the table's; the table (key -> jobs by rule)
    is printed for the reader (pytest -s)."""
    cfg = small_config()
    rows, wrong = [], {}
    for key, value in EDITS.items():
        got = done.plan(done.write(edited(cfg, key, value), "edited.yaml"))
        want = expected(done, key)
        counts: dict[str, int] = {}
        for rule, _ in got:
            counts[rule] = counts.get(rule, 0) + 1
        rows.append(f"{key:45s} {json.dumps(counts, sort_keys=True) if got else 'nothing'}")
        if got != want:
            wrong[key] = {"unexpected": sorted(map(label, got - want)),
                          "missing": sorted(map(label, want - got))}
    print("\n".join(["", f"completed run built in {done.build_seconds:.0f} s", *rows]))
    assert not wrong, json.dumps(wrong, indent=1)


def test_a_replaced_config_file_reruns_its_readers_and_a_touched_one_nothing(done):
    """Local files named in the config are inputs: new content reruns the jobs that read them;
    a new mtime alone (same content, small file: Snakemake compares checksums) reruns nothing."""
    train = done.work / "data" / "tr" / "train.jsonl"
    text = train.read_text(encoding="utf-8")
    os.utime(train)  # a copy or checkout: same content, newer mtime
    assert done.plan() == set()
    bert = done.work / "models" / "bertscore" / "config.json"
    original = bert.read_text(encoding="utf-8")
    try:
        train.write_text("\n".join(reversed(text.splitlines())) + "\n", encoding="utf-8")
        bert.write_text(json.dumps(json.loads(original), indent=4), encoding="utf-8")
        tr, sm = runs_where(done, dataset="tr"), runs_where(done, dataset="sm")
        want = (data_jobs("translation", "tr", ("fetch", "filter", "filter_test"))
                | {job("base_model_hub", model="t5", dataset="tr")} | whole_run(tr)
                | evaluate_jobs(sm) | {REPORT})
        assert done.plan() == want
    finally:
        train.write_text(text, encoding="utf-8")
        bert.write_text(original, encoding="utf-8")


def test_edited_library_code_reruns_the_jobs_that_run_it(done):
    """A metric module: the evaluate jobs; the warmup method: warmup's training and decoding
    (not sft's, not co-supervision's)."""
    mt = done.repo / "src" / "repro" / "metrics" / "mt.py"
    warmup = done.repo / "src" / "repro" / "methods" / "warmup.py"
    for path, want in (
        (mt, evaluate_jobs(done.runs) | {REPORT}),
        (warmup, whole_run(runs_where(done, method="warmup")) | {REPORT}),
    ):
        original = path.read_text(encoding="utf-8")
        try:
            path.write_text(original + "\n# an edit\n", encoding="utf-8")
            assert done.plan() == want, path.name
        finally:
            path.write_text(original, encoding="utf-8")
        os.utime(path)  # the original content back, with a new mtime


def test_new_mtimes_of_all_code_rerun_nothing(done):
    """A git checkout gives every workflow script and library module a new mtime: with the
    profile's rerun-triggers and the code hashes, nothing reruns."""
    code = [*(done.repo / "workflow_scripts").glob("*.py"),
            *(done.repo / "src").rglob("*.py"), *(done.repo / "rules").glob("*.smk")]
    for path in code:
        os.utime(path)
    assert done.plan() == set()


def test_a_dry_runs_reason_names_the_edited_key(done):
    """The `reason:` line of a job planned for a config edit names the edited key with its old
    and new values (repro.param_keys), not the whole config slice twice."""
    cfg = edited(small_config(), "training.learning_rate", 2.0e-3)
    out = snakemake(done.repo, done.work, done.write(cfg, "edited.yaml"), "-n").stdout
    reasons = [ln for ln in out.splitlines() if "Params have changed" in ln]
    assert reasons and len(reasons) == len(whole_run(done.runs) & train_jobs(
        done.runs, ("train", "train_embseq")))
    for line in reasons:
        assert "training.learning_rate=0.001" in line and "training.learning_rate=0.002" in line
        assert len(line) < 600, line
