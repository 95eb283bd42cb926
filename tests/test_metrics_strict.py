"""metrics.strict: a metric that cannot run fails evaluation naming the metric, the run and the
reason (the embedded default records the skip); skips by design never fail; a strict config's
missing metric model stops a real Snakemake run before its first job, and a dry run shows it."""

import json

import pytest
from test_metrics_evaluate import KB_PREDS, KB_REFS, TRANSLATION_PREDS, TRANSLATION_REFS
from workflow_runs import load_yaml, snakemake, write_yaml

from repro.io import write_jsonl
from repro.metrics.availability import stop_if_unavailable
from repro.metrics.evaluate import TASK_METRICS, evaluate_files
from repro.metrics.strict import MetricUnavailable, failures, require

RUN = {"task": "translation", "dataset": "de-en", "model": "mt5_base", "method": "warmup",
       "variant": "default", "seed": 1}
RUN_ID = "translation/de-en/mt5_base/warmup/default/seed1"


@pytest.fixture
def translation_files(tmp_path):
    write_jsonl(tmp_path / "refs.jsonl", TRANSLATION_REFS)
    write_jsonl(tmp_path / "preds.jsonl", TRANSLATION_PREDS)
    return tmp_path / "preds.jsonl", tmp_path / "refs.jsonl"


def test_strict_evaluation_raises_naming_metric_run_and_reason(translation_files):
    cfg = {"run": RUN, "strict": True, "comet": {"model": None}}
    with pytest.raises(MetricUnavailable) as e:
        evaluate_files("translation", *translation_files, cfg)
    msg = str(e.value)
    assert msg.startswith(f"run {RUN_ID}: 1 metric(s) cannot run:\n")
    assert "  comet: no COMET model configured (set metrics.comet.model)\n" in msg
    assert "metrics.strict is true" in msg


def test_lax_evaluation_records_the_skip(translation_files):
    out = evaluate_files("translation", *translation_files, {"run": RUN, "comet": {}})
    assert out["metrics"]["comet"] == {
        "skipped": "no COMET model configured (set metrics.comet.model)"}
    assert out["metrics"]["bleu"]["value"] > 0


def test_comet_entry_from_the_comet_rule_is_merged(translation_files, tmp_path):
    entry = {"value": 61.5, "signature": "comet=2.2.7|model=m", "n": 3}
    (tmp_path / "comet.json").write_text(json.dumps({"run": RUN, "n": 3, "comet": entry}))
    out = evaluate_files("translation", *translation_files,
                         {"run": RUN, "strict": True, "comet": {"model": "m"}},
                         comet_path=tmp_path / "comet.json")
    assert out["metrics"]["comet"] == entry
    assert list(out["metrics"]) == list(TASK_METRICS["translation"])


def test_strict_summarization_names_bertscore(tmp_path):
    refs = [{"id": "s1", "source": "doc", "target": "the cat sat"}]
    write_jsonl(tmp_path / "refs.jsonl", refs)
    write_jsonl(tmp_path / "preds.jsonl", [{"id": "s1", "hypothesis": "the cat sat"}])
    run = {**RUN, "task": "summarization", "dataset": "xsum"}
    cfg = {"run": run, "strict": True, "bertscore": {"model": "/nonexistent/roberta"}}
    with pytest.raises(MetricUnavailable, match=r"run summarization/xsum/.*\n  bertscore: "
                                                r"BERTScore model path not found: "):
        evaluate_files("summarization", tmp_path / "preds.jsonl", tmp_path / "refs.jsonl", cfg)


def test_skips_by_design_are_not_failures(tmp_path):
    """A run without retrieval: its retrieval metrics do not apply; accuracy is not a metric of
    kilt_task qa. Neither fails a strict config; a grounding model that is not set does."""
    preds = [{k: v for k, v in p.items() if k != "retrieved"} for p in KB_PREDS]
    write_jsonl(tmp_path / "test.jsonl", KB_REFS)
    write_jsonl(tmp_path / "preds.jsonl", preds)
    wanted = [m for m in TASK_METRICS["knowledge"] if m != "grounding"]
    run = {**RUN, "task": "knowledge", "dataset": "nq"}
    cfg = {"run": run, "strict": True, "kilt_task": "qa", "metrics": wanted}
    out = evaluate_files("knowledge", tmp_path / "preds.jsonl", tmp_path / "test.jsonl", cfg)
    assert "skipped" in out["metrics"]["r_precision"] and "skipped" in out["metrics"]["accuracy"]
    assert failures(out["metrics"]) == []
    with pytest.raises(MetricUnavailable, match="grounding: no NLI model configured"):
        evaluate_files("knowledge", tmp_path / "preds.jsonl", tmp_path / "test.jsonl",
                       {**cfg, "metrics": None})


def test_require_lists_every_failure():
    metrics = {"a": {"value": 1.0}, "b": {"skipped": "no model"}, "c": {"skipped": "gone"},
               "d": {"skipped": "other task", "not_applicable": True}}
    require(metrics, "r", strict=False)
    with pytest.raises(MetricUnavailable, match=r"run r: 2 metric\(s\) cannot run:\n  b: no "
                                                r"model\n  c: gone\n"):
        require(metrics, "r", strict=True)


def test_stop_before_any_job():
    stop_if_unavailable([])
    with pytest.raises(MetricUnavailable, match=r"stopping before any job:\n  x: y\n"):
        stop_if_unavailable(["x: y"])


@pytest.mark.e2e
def test_strict_config_without_its_metric_model_stops_before_the_first_job(tmp_path):
    cfg = load_yaml()
    missing = str(tmp_path / "no-such-comet")
    cfg["metrics"] = {"strict": True, "comet": {"model": missing},
                      "bertscore": {"model": str(tmp_path / "no-such-encoder"), "num_layers": 2},
                      "grounding": {"model": str(tmp_path / "no-such-nli")}}
    path = write_yaml(tmp_path / "strict.yaml", cfg)
    expected = [f"metrics.comet.model: COMET model path not found: {missing}",
                f"metrics.bertscore.model: no model folder (with config.json) at "
                f"{tmp_path / 'no-such-encoder'}",
                f"metrics.grounding.model: no model folder (with config.json) at "
                f"{tmp_path / 'no-such-nli'}"]
    # a dry run shows the problems (and stops: the metric models are inputs of the evaluate
    # jobs, missing ones named with their keys)
    dry = snakemake(tmp_path / "work", "-n", config=path, check=False)
    assert dry.returncode != 0
    for line in expected:
        assert f"metrics.strict: {line}" in dry.stderr
    assert (f"missing file named in the config: metrics.comet.model: {missing} does not exist"
            in dry.stderr)
    # folders that exist but hold no model: the DAG builds, and the run stops before any job
    for name in ("no-such-encoder", "no-such-nli"):
        (tmp_path / name).mkdir()
    cfg["metrics"].pop("comet")
    real = snakemake(tmp_path / "work", config=write_yaml(path, cfg), check=False)
    assert real.returncode != 0
    out = real.stdout + real.stderr
    assert "cannot run offline; stopping before any job" in out
    assert all(line in out for line in expected[1:])
    assert not (tmp_path / "work" / "results").exists()  # no job ran
