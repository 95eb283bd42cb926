"""What a job asks a cluster for (repro.resources), attempt by attempt, and the profiles that
pass it on: retries grow memory (and a decoding job's time) only up to the model's caps, a
training retry resumes in the same time, whole-node jobs never grow; the SLURM profile holds
only cluster names, the rules the sizes."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from repro import config as rc
from repro import resources as rr

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = ("paper_warmup.yaml", "paper_cosup.yaml")
GPU_RULES = ("train", "predict", "embed_passages")
# rules made for the jobs of a rule that ask for a GPU (`use rule ... with:`), and that rule
GPU_VARIANTS = {"evaluate_nli": "evaluate", "pool_embeddings_gpu": "pool_embeddings",
                "search_pools_gpu": "search_pools"}


def cfg_with(**resources) -> dict:
    return {"models": {"m": {"kind": "tiny", "resources": resources}}}


def asks(cfg: dict, stage: str, attempts=(1, 2, 3)) -> list[tuple[int, int, int]]:
    return [tuple(rr.job_resources(cfg, "m", stage, a).values()) for a in attempts]


def test_training_memory_grows_to_its_cap_and_its_time_never():
    cfg = cfg_with(gpu=1, mem_mb=32000, runtime=2880, max_mem_mb=64000)
    # (gpu, mem_mb, runtime) of attempts 1, 2, 3: 32000, 2 x 32000, min(3 x 32000, 64000)
    assert asks(cfg, "train") == [(1, 32000, 2880), (1, 64000, 2880), (1, 64000, 2880)]
    cfg = cfg_with(gpu=1, mem_mb=30000, runtime=60, max_mem_mb=80000)
    assert [r[1] for r in asks(cfg, "train")] == [30000, 60000, 80000]


def test_without_a_cap_nothing_grows_as_for_a_whole_node_job():
    cfg = cfg_with(gpu=8, mem_mb=640000, runtime=4320)
    assert asks(cfg, "train") == [(8, 640000, 4320)] * 3
    # a decoding job defaults to one GPU, that GPU's share of the memory, the training time
    assert asks(cfg, "decode") == [(1, 80000, 4320)] * 3
    assert asks(cfg, "embed") == [(1, 80000, 4320)] * 3


def test_decoding_and_embedding_have_their_own_sizes_and_grow_in_time_too():
    cfg = cfg_with(gpu=8, mem_mb=640000, runtime=4320,
                   decode={"gpu": 1, "mem_mb": 100000, "runtime": 720, "max_runtime": 1000},
                   embed={"mem_mb": 64000, "runtime": 240, "max_mem_mb": 150000,
                          "max_runtime": 480})
    # runtime: 720, min(1440, 1000), min(2160, 1000); memory: no cap given, no growth
    assert asks(cfg, "decode") == [(1, 100000, 720), (1, 100000, 1000), (1, 100000, 1000)]
    # memory 64000, 128000, min(192000, 150000); time 240, 480, min(720, 480)
    assert asks(cfg, "embed") == [(1, 64000, 240), (1, 128000, 480), (1, 150000, 480)]
    assert rr.job_resources(cfg_with(), "m", "decode") == {"gpu": 0, "mem_mb": 4000,
                                                           "runtime": 60}


def test_gres_and_the_early_signal():
    assert [rr.gres(n) for n in (0, 1, 8)] == ["", "gpu:1", "gpu:8"]
    assert rr.stop_signal(cfg_with(runtime=60), "m") == "--signal=TERM@300"
    assert rr.stop_signal(cfg_with(runtime=60, stop_seconds=45), "m") == "--signal=TERM@45"


def test_rule_resource_functions():
    cfg = cfg_with(gpu=2, mem_mb=1000, runtime=10, max_mem_mb=1500, stop_seconds=60)
    wc = SimpleNamespace(model="m")
    got = {name: rr.resource_function(cfg, "train", name)(wc, 2)
           for name in ("gpu", "gres", "mem_mb", "runtime", "slurm_extra")}
    assert got == {"gpu": 2, "gres": "gpu:2", "mem_mb": 1500, "runtime": 10,
                   "slurm_extra": "--signal=TERM@60"}
    assert rr.resource_function(cfg, "decode", "gres")(wc, 1) == "gpu:1"
    with pytest.raises(ValueError, match="early signal"):
        rr.resource_function(cfg, "decode", "slurm_extra")
    with pytest.raises(ValueError, match="unknown job kind"):
        rr.job_resources(cfg, "m", "score")


@pytest.mark.parametrize("resources, message", [
    ({"mem_mb": 8000, "max_mem_mb": 4000}, r"models\.m\.resources\.max_mem_mb: 4000 is below"),
    ({"decode": {"runtime": 100, "max_runtime": 50}},
     r"models\.m\.resources\.decode\.max_runtime: 50 is below runtime 100"),
    ({"runtime": 5}, r"models\.m\.resources\.stop_seconds: 300 s is not shorter"),
    ({"embed": {"gpu": 2}}, r"models\.m\.resources\.embed\.gpu: 2; a embed job runs in one"),
])
def test_ungrantable_sizes_are_errors_naming_the_key(resources, message):
    with pytest.raises(rr.ResourceError, match=message):
        rr.check_resources(cfg_with(**resources))


def test_config_validation_checks_resources():
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"]["tiny_t5"]["resources"]["stop_seconds"] = 600  # runtime 10 min
    with pytest.raises(rc.ConfigError, match=r"models\.tiny_t5\.resources\.stop_seconds"):
        rc.validate_config(cfg)
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"]["tiny_t5"]["resources"]["max_runtime"] = 20  # only decode/embed have one
    with pytest.raises(Exception, match="max_runtime"):
        rc.validate_config(cfg)


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_config_retries_stay_within_the_caps(name):
    """Every job of a paper config, attempts 1 to 3: within the model's caps (never the
    1.28 TB / 144 h of doubling a whole-node job), a training job's time unchanged."""
    cfg = rc.load_config(ROOT / "config" / name)
    for model, entry in cfg["models"].items():
        for stage in rr.STAGES:
            e = rr.stage_entry(cfg, model, stage)
            jobs = [rr.job_resources(cfg, model, stage, a) for a in (1, 2, 3)]
            assert all(j["mem_mb"] <= e["max_mem_mb"] and j["runtime"] <= e["max_runtime"]
                       for j in jobs), (model, stage, jobs)
            if stage == "train":
                assert {j["runtime"] for j in jobs} == {entry["resources"]["runtime"]}
    if name == "paper_cosup.yaml":
        whole_node = [rr.job_resources(cfg, "llama2_7b", "train", a) for a in (1, 2, 3)]
        assert whole_node == [{"gpu": 8, "mem_mb": 640000, "runtime": 4320}] * 3
        assert rr.stop_signal(cfg, "llama2_7b") == "--signal=TERM@1200"
        embed = rr.job_resources(cfg, "llama2_7b", "embed")
        assert embed["runtime"] < 4320 and embed["mem_mb"] < 640000  # not training's sizes


def rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", text, flags=re.M):
            blocks[m.group(1)] = m.group(2)
    return blocks


def test_only_training_decoding_and_embedding_jobs_are_retried():
    blocks = rule_blocks()
    assert set(GPU_RULES) < set(blocks)
    for rule, body in blocks.items():
        # pretrain: a training job (GPU, resumable from its checkpoints), retried like one
        if rule in (*GPU_RULES, "pool_embeddings", "pretrain") or "localrule: True" in body:
            assert "retries:" not in body, rule  # the profile's `retries`
        else:
            assert re.search(r"^    retries: 0$", body, flags=re.M), rule


def test_rules_size_gpu_jobs_from_the_config_and_pin_training_to_one_node():
    blocks = rule_blocks()
    stage = {"train": "train", "predict": "decode", "embed_passages": "embed"}
    for rule in GPU_RULES:
        for name in ("gpu", "gres", "mem_mb", "runtime"):
            assert f'{name}=model_resource("{stage[rule]}", "{name}")' in blocks[rule], rule
    assert "nodes=1," in blocks["train"]
    assert 'slurm_extra=model_resource("train", "slurm_extra")' in blocks["train"]


def test_slurm_profile_parses_and_holds_only_cluster_settings():
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "profile.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] == 2
    assert profile["slurm-requeue"] is True
    # the profile a user gets checks job states with sacct (the plugin's default)
    assert "slurm-status-command" not in profile and "slurm-no-account" not in profile
    # sizes live in the rules and the config only: no mem_mb, runtime, gpu count here
    assert profile["default-resources"] == {"slurm_partition": "cpu"}
    assert set(profile["set-resources"]) == {*GPU_RULES, *GPU_VARIANTS}
    for rule, res in profile["set-resources"].items():
        assert res == {"slurm_partition": "gpu", "gres": ""}, rule  # --gpus=N, not both
    assert set(profile["set-resources"]) <= set(rule_blocks()) | set(used_rules())
    assert set(profile["groups"]) <= set(rule_blocks())
    assert not set(profile["groups"]) & set(GPU_VARIANTS)  # a GPU job is not grouped


def used_rules() -> dict[str, str]:
    """Rules made from another (`use rule A as B with:`): B -> A."""
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "rules").glob("*.smk"))
    return {m[2]: m[1] for m in re.finditer(r"^use rule (\w+) as (\w+) with:", text, re.M)}


def test_gpu_variants_of_rules_take_precedence_over_them():
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "rules").glob("*.smk"))
    assert GPU_VARIANTS.items() <= used_rules().items()
    for rule, base in GPU_VARIANTS.items():
        assert f"ruleorder: {rule} > {base}" in text


def test_the_local_gpu_cap_belongs_to_make_demo():
    """profiles/default is picked up by every run without --workflow-profile (also beside a
    user's site profile): it caps nothing; `make demo` caps local GPU jobs at one at a time."""
    default = yaml.safe_load((ROOT / "profiles" / "default" / "profile.yaml").read_text())
    assert "resources" not in default
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert "--resources gpu=1" in demo.group(1)


# --- jobs without a model: TRUE NLI scoring, the passage index, pool jobs ---------------------


def nli_config(model="google/t5_xxl_true_nli_mixture", **resources) -> dict:
    return {"datasets": {"kb": {"task": "knowledge"},
                         "eli5": {"task": "knowledge",
                                  "knowledge_metrics": {"correctness": "claims_nli"}},
                         "mt": {"task": "translation"}},
            "metrics": {"grounding": {"kind": "spans"},
                        "true_nli": {"model": model, "resources": resources}}}


def run(dataset, method, task="knowledge"):
    from repro.runs import Run

    return Run(task, dataset, "m", method, "default", 0)


def test_evaluate_jobs_that_load_the_true_model_and_their_size():
    cfg = nli_config()
    assert rr.true_nli_job(cfg) == {"gpu": 1, "mem_mb": 64000, "runtime": 240}
    assert rr.true_nli_job(nli_config(mem_mb=80000)) == {"gpu": 1, "mem_mb": 80000,
                                                         "runtime": 240}
    # span grounding: cosup runs (their predictions carry spans); claim recall: any method
    loads = {(d, m): rr.loads_true_nli(cfg, run(d, m)) for d in ("kb", "eli5")
             for m in ("cosup", "sft")}
    assert loads == {("kb", "cosup"): True, ("kb", "sft"): False, ("eli5", "cosup"): True,
                     ("eli5", "sft"): True}
    assert not rr.loads_true_nli(cfg, run("mt", "cosup", "translation"))
    assert not rr.loads_true_nli(nli_config(model=None), run("eli5", "sft"))  # skipped: no job
    sentences = {**cfg, "metrics": {**cfg["metrics"], "grounding": {"kind": "sentences"}}}
    assert not rr.loads_true_nli(sentences, run("kb", "cosup"))


def test_true_nli_constraints_route_those_runs_only():
    cfg = nli_config()
    runs = [run("kb", "cosup"), run("kb", "sft"), run("mt", "sft", "translation")]
    c = rr.true_nli_constraints(cfg, runs)
    assert c == {"task": "knowledge", "dataset": "kb", "method": "cosup"}
    both = rr.true_nli_constraints(cfg, [*runs, run("eli5", "sft")])
    assert both["dataset"] == "eli5|kb" and both["method"] == "cosup|sft"
    none = rr.true_nli_constraints(nli_config(model=None), runs)
    assert all(re.fullmatch(v, x) is None for v in none.values() for x in ("knowledge", "kb"))
    assert re.fullmatch(rr.name_pattern(["a+b", "c"]), "a+b")
    assert re.fullmatch(rr.name_pattern(["a+b"]), "aab") is None


def test_paper_cosup_scores_every_run_with_one_gpu():
    for name in ("paper_cosup.yaml", "paper_cosup_released.yaml"):
        cfg = rc.load_config(ROOT / "config" / name)
        runs = rc.expand_runs(cfg)
        assert all(rr.loads_true_nli(cfg, r) for r in runs), name
        assert rr.true_nli_job(cfg) == {"gpu": 1, "mem_mb": 64000, "runtime": 240}
    cfg = rc.load_config(ROOT / "config" / "test.yaml")  # no TRUE model: no such job
    assert rr.true_nli_constraints(cfg, rc.expand_runs(cfg))["task"] == rr.NEVER


def test_true_nli_resources_rerun_no_scoring():
    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    r = next(x for x in rc.expand_runs(cfg) if x.dataset == "alce_eli5")
    before = rc.evaluate_params(cfg, r)
    cfg["metrics"]["true_nli"]["resources"] = {"gpu": 1, "mem_mb": 99000, "runtime": 9}
    assert rc.evaluate_params(cfg, r) == before
    cfg["metrics"]["true_nli"]["batch_size"] = 4  # a setting of the model does
    assert rc.evaluate_params(cfg, r) != before


def test_index_job_grows_with_the_embeddings_it_reads():
    # FEVER's pool: 10,444 questions x 100 passages x 4096 floats x 4 bytes = 17,113 MB of
    # shards: shards + concatenation + index = 3 x 17,113 + 4,000 MB; 60 + 10 x 17.113 min
    assert rr.index_job(17113.0) == {"mem_mb": 55339, "runtime": 232}
    assert rr.index_job(0.4) == {"mem_mb": 4003, "runtime": 61}
    assert rr.index_job(0) == {"mem_mb": 4000, "runtime": 60}
    assert "mem_mb=index_resource(\"mem_mb\")" in rule_blocks()["build_index"]


def test_pool_jobs_on_a_gpu_are_the_ones_that_ask_for_it():
    from repro import pool_jobs as pj

    pools = {"pre": {"embeddings": {"precomputed": "dir"}, "resources": {"gpu": 1}},
             "emb": {"embeddings": {"precomputed": None}, "resources": {"gpu": 1}},
             "cpu": {"resources": {"gpu": 0}}}
    cfg = {"pools": pools}
    assert pj.gpu_pools(cfg, "embed") == ["emb"]  # converting precomputed vectors: CPU
    assert pj.gpu_pools(cfg, "search") == ["pre", "emb"]
    paper = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    assert pj.gpu_pools(paper, "embed") == []
    assert pj.gpu_pools(paper, "search") == ["wiki_contriever_msmarco"]
