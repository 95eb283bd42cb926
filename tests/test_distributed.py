"""Training in several processes, on CPU with gloo: how a job is launched (torchrun for k > 1
GPUs), data parallelism equal to one process on the same global batch for every method (SFT,
warmup with fixed warmups, co-supervision), checkpoints that resume on another number of
processes, and the FSDP settings of the 7B co-supervision runs.

(Cross-rank NSP negatives against the single-process in-batch loss: tests/test_cosup_dist.py.)
"""

import copy
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_train import records
from tiny_models import train_config

from repro import config as rc
from repro import launch
from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.config import ConfigError
from repro.device import (
    decoder_layer_classes,
    enable_activation_checkpointing,
    fsdp_arguments,
    strategy,
)
from repro.io import read_json, read_jsonl, write_jsonl
from repro.models import load_model

ROOT = Path(__file__).resolve().parents[1]
TESTS = str(Path(__file__).resolve().parent)


# --- launching ---------------------------------------------------------------------------


def test_launch_command_for_the_7b_cosup_jobs():
    cfg = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    gpus = rc.model_resources(cfg, "llama2_7b")["gpu"]
    assert gpus == 8
    cmd = launch.launch_command(gpus, launch.TRAIN_MODULE, ["ckpt/launch.json"], python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8",
                   f"--shutdown-timeout={launch.SHUTDOWN_SECONDS}", "-m", "repro.train_cli",
                   "ckpt/launch.json"]
    assert launch.launch_command(1, "repro.train_cli", ["j"], python="py") == [
        "py", "-m", "repro.train_cli", "j"]
    assert launch.n_processes(8, visible=8) == 8
    assert launch.n_processes(8, visible=4) == 4  # a node showing fewer GPUs than asked for
    assert launch.n_processes(8, visible=0) == 1  # CPU
    assert launch.n_processes(0, visible=8) == 1


def test_fake_gpus_train_in_gloo_processes_on_the_cpu(monkeypatch):
    """A test cluster's fake GPUs: k processes on the CPU only when asked (REPRO_FAKE_GPUS)."""
    monkeypatch.delenv(launch.FAKE_GPUS_ENV, raising=False)
    assert launch.n_processes(2) == 1
    monkeypatch.setenv(launch.FAKE_GPUS_ENV, "1")
    assert launch.n_processes(2) == 2 and launch.n_processes(0) == 1


def test_gpus_from_the_gpu_or_gres_resource():
    assert launch.requested_gpus(SimpleNamespace(gpu=8)) == 8
    assert launch.requested_gpus(SimpleNamespace(gpu=0, gres="gpu:a100:4")) == 4
    assert launch.requested_gpus(SimpleNamespace(gpu=0, gres="gpu:2")) == 2
    assert launch.requested_gpus(SimpleNamespace(gpu=0, gres="gpu")) == 1
    assert launch.requested_gpus(SimpleNamespace(gpu=0)) == 0


def test_torchrun_only_for_several_processes_or_fsdp(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert launch.needs_torchrun(2, "ddp", cuda=False)
    assert not launch.needs_torchrun(1, "ddp", cuda=True)
    assert launch.needs_torchrun(1, "fsdp", cuda=True)  # FSDP checkpoints load under FSDP only
    assert not launch.needs_torchrun(1, "fsdp", cuda=False)
    monkeypatch.setenv("LOCAL_RANK", "0")  # a torchrun child never launches again
    assert not launch.needs_torchrun(8, "fsdp", cuda=True)


def test_paper_configs_set_the_strategy_and_global_batch():
    cosup = rc.load_config(ROOT / "config" / "paper_cosup.yaml")
    run = next(r for r in rc.training_runs(cosup) if r.variant == "ntp+nsp")
    training = rc.resolve(cosup, run)["training"]
    assert training["distributed"] == {"strategy": "fsdp", "activation_checkpointing": True}
    assert [train_mod.grad_accum(training, k) for k in (8, 4, 2, 1)] == [1, 2, 4, 8]
    batch2 = next(r for r in rc.training_runs(cosup) if r.variant == "batch2")
    assert train_mod.grad_accum(rc.resolve(cosup, batch2)["training"], 8) == 1  # 2 x 8 = 16
    warm = rc.load_config(ROOT / "config" / "paper_warmup.yaml")
    training = rc.resolve(warm, rc.training_runs(warm)[0])["training"]
    assert training["distributed"]["strategy"] == "ddp"
    assert [train_mod.grad_accum(training, k) for k in (1, 2, 4)] == [4, 2, 1]
    with pytest.raises(ConfigError, match="training.global_batch: 64 is not a multiple"):
        train_mod.grad_accum({**training, "global_batch": 64}, 3)
    assert train_mod.grad_accum({"batch_size": 8, "grad_accum": 3}, 4) == 3  # no global_batch


def test_strategy_resolution():
    assert strategy("auto", 8, 7_000_000_000, cuda=True) == "fsdp"
    assert strategy("auto", 8, 1_200_000_000, cuda=True) == "ddp"
    assert strategy("auto", 1, 7_000_000_000, cuda=True) == "ddp"
    assert strategy("fsdp", 2, 10, cuda=True) == "fsdp"
    assert strategy("fsdp", 2, 10, cuda=False) == "ddp"  # the Trainer has no FSDP on CPU
    with pytest.raises(ValueError, match="strategy"):
        strategy("zero3", 2, 10)


# --- FSDP settings of the co-supervision pair --------------------------------------------


def cosup_model(tmp_path, embseq_family=None):
    from tiny_models import build

    from repro.methods import get_method
    from repro.models import DECODER_ONLY, load_tokenizer

    gen = build("llama", tmp_path / "gen", layers=2)
    options = {"supervision": "ntp+nsp"}
    if embseq_family:
        options["embseq_path"] = build(embseq_family, tmp_path / "emb", layers=2)["path"]
    method = get_method("cosup", options, load_tokenizer(gen["path"], DECODER_ONLY),
                        DECODER_ONLY)
    return method.prepare_model(load_model(gen["path"], DECODER_ONLY), gen["path"])


@pytest.mark.parametrize("embseq", [None, "gpt2"])
def test_fsdp_wraps_the_decoder_layers_of_gen_and_embseq(tmp_path, embseq):
    model = cosup_model(tmp_path, embseq)
    args = fsdp_arguments(model, activation_checkpointing=True)
    names = set(args["fsdp_config"]["transformer_layer_cls_to_wrap"])
    assert names == ({"LlamaDecoderLayer"} if embseq is None else {"LlamaDecoderLayer",
                                                                   "GPT2Block"})
    assert args["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"  # world-size free
    assert args["fsdp_config"]["activation_checkpointing"] is True
    for part in (model.gen, model.embseq):  # every layer of both models is a wrap unit
        layers = [m for m in part.modules() if type(m).__name__ in names]
        assert len(layers) == 2
    with pytest.raises(ValueError, match="no decoder layer class"):
        decoder_layer_classes(torch.nn.Linear(2, 2))


def test_activation_checkpointing_keeps_loss_and_gradients(tmp_path):
    model = cosup_model(tmp_path)
    torch.manual_seed(0)
    ids = torch.randint(5, 40, (2, 12))
    mask = torch.ones_like(ids)

    def loss_and_grads():
        model.zero_grad()
        h = model.gen(input_ids=ids, attention_mask=mask, labels=ids).loss
        e = model.sequences(ids, mask).pow(2).mean()
        (h + e).backward()
        return h.item() + e.item(), [p.grad.clone() for p in model.parameters()]

    model.train()
    before = loss_and_grads()
    assert enable_activation_checkpointing(model) == 2  # Gen and Embseq
    assert model.gen.is_activation_checkpointing and model.embseq.is_activation_checkpointing
    after = loss_and_grads()
    assert after[0] == pytest.approx(before[0], rel=1e-6)
    for a, b in zip(after[1], before[1], strict=True):
        torch.testing.assert_close(a, b)


# --- real training under torchrun --------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny T5 without dropout (the ranks' dropout masks would differ from one process's),
    48 training records, 8 per optimizer step on any number of processes."""
    root = tmp_path_factory.mktemp("dist")
    data = root / "data"
    write_jsonl(data / "train.jsonl", records(48))
    cfg = {"kind": "tiny", "family": "t5", "tokenizer": {"vocab_size": 60},
           "config": {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1,
                      "num_decoder_layers": 1, "num_heads": 2, "dropout_rate": 0.0}}
    manifest = prepare_base_model("m", cfg, data / "train.jsonl", root / "base")
    resolved = train_config(seed=3, global_batch=8,
                            distributed={"strategy": "auto", "activation_checkpointing": False})
    return root, data, manifest, resolved


def job(setup, name):
    root, data, manifest, resolved = setup
    out = root / name
    return {"resolved": resolved, "manifest": manifest, "data_dir": str(data),
            "model_out": str(out / "model"), "log_out": str(out / "log.jsonl"),
            "ckpt_dir": str(out / "checkpoints")}


def torchrun(job_, monkeypatch, **env):
    """The job in 2 processes through repro.launch, with the test callbacks of
    tests/dist_train_helper.py; LaunchError when they fail."""
    path = launch.write_job(job_, Path(job_["ckpt_dir"]) / launch.JOB_FILE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    launch.run_processes(launch.launch_command(2, "dist_train_helper", [str(path)],
                                               python=sys.executable))


def in_process(job_, monkeypatch, **env):
    """The job in this process (as repro.launch runs one GPU or CPU), with the same callbacks."""
    import dist_train_helper

    from repro.methods.warmup import Warmup

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # restored after the test: install() wraps MethodTrainer.__init__ (and may patch these)
    monkeypatch.setattr(train_mod.MethodTrainer, "__init__", train_mod.MethodTrainer.__init__)
    monkeypatch.setattr(Warmup, "sample_warmups", Warmup.sample_warmups)
    monkeypatch.setattr(train_mod, "method_loss", train_mod.method_loss)
    dist_train_helper.install()
    return launch.train(job_, gpus=0)


def weights(path):
    return load_model(str(path), "encoder-decoder").state_dict()


def first_step_grads_two_and_one(setup, monkeypatch, tmp_path, name, **env):
    """The first optimizer step's gradients of the job in 2 processes (both ranks) and in 1,
    and the 1-process summary; the 2-process loss must have gone through DDP."""
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    torchrun(job(setup, f"{name}2"), monkeypatch, REPRO_TEST_GRADS=str(two),
             REPRO_TEST_WRAPPER=str(two), **env)
    summary = in_process(job(setup, f"{name}1"), monkeypatch, REPRO_TEST_GRADS=str(one),
                         REPRO_TEST_WRAPPER=str(one), **env)
    assert {(two / f"wrapper{r}.txt").read_text() for r in (0, 1)} == {
        "DistributedDataParallel"}
    assert (one / "wrapper0.txt").read_text() != "DistributedDataParallel"
    return [torch.load(two / f"rank{r}.pt") for r in (0, 1)], torch.load(one / "rank0.pt"), summary


def assert_same_grads(g2s, g1, names=None):
    for g2 in g2s:  # after the all-reduce both ranks hold the global batch's gradient
        assert g2.keys() == g1.keys()
        for name in names or g1:
            torch.testing.assert_close(g2[name], g1[name], rtol=1e-4, atol=1e-6)


def test_data_parallel_step_equals_one_process_on_the_global_batch(setup, monkeypatch,
                                                                   tmp_path):
    g2s, g1, summary = first_step_grads_two_and_one(setup, monkeypatch, tmp_path, "ddp")
    assert summary["processes"] == 1 and summary["steps"] == 6  # 48 / 8
    assert_same_grads(g2s, g1)
    root = setup[0]
    log2, log1 = (read_jsonl(root / n / "log.jsonl") for n in ("ddp2", "ddp1"))
    assert log2[0]["step"] == log1[0]["step"] == 1
    assert log2[0]["loss"] == pytest.approx(log1[0]["loss"], rel=1e-4)
    assert log2[0]["grad_norm"] == pytest.approx(log1[0]["grad_norm"], rel=1e-4)  # unclipped
    w2, w1 = weights(root / "ddp2" / "model"), weights(root / "ddp1" / "model")
    for name in w1:  # six steps later: the same model
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-3, atol=1e-5)
    assert not (root / "ddp2" / "checkpoints").exists()  # rank 0 removed them


def with_method(setup, method, options):
    root, data, manifest, resolved = setup
    resolved = copy.deepcopy(resolved)
    resolved["run"]["method"] = method
    resolved["method"] = {"name": method, "options": options}
    return root, data, manifest, resolved


def test_warmup_data_parallel_equals_one_process(setup, monkeypatch, tmp_path):
    """Warmup under DDP: the conditioned pass goes through the wrapper (gradients all-reduced),
    sampling uses the plain model; with the same warmups, one step equals one process's."""
    warm = with_method(setup, "warmup", {"n": 2, "num_beams": 2, "warmup_len": 3})
    g2s, g1, summary = first_step_grads_two_and_one(warm, monkeypatch, tmp_path, "warm",
                                                    REPRO_TEST_WARMUPS="1")
    assert summary["steps"] == 6
    assert_same_grads(g2s, g1)
    assert any(g.abs().sum() > 0 for g in g1.values())


@pytest.fixture(scope="module")
def cosup_setup(tmp_path_factory, setup):
    """A tiny Llama on the synthetic knowledge task, 16 training records, 8 per step."""
    from repro.data.sources import write_fetch
    from repro.data.synthetic import generate

    root = tmp_path_factory.mktemp("dist_cosup")
    res = generate("knowledge", {"n_people": 40, "n_companies": 20, "n_train": 16,
                                 "n_validation": 4, "n_test": 4}, 0)
    write_fetch(res, root / "data")
    cfg = {"kind": "tiny", "family": "llama", "tokenizer": {"vocab_size": 200},
           "config": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                      "num_attention_heads": 2, "num_key_value_heads": 1}}
    manifest = prepare_base_model("m", cfg, root / "data" / "train.jsonl", root / "base")
    resolved = copy.deepcopy(setup[3])
    resolved["run"].update(task="knowledge", method="cosup", variant="ntp+nsp")
    # in-batch negatives per micro-batch, as one process's accumulation steps see them (with
    # gather_negatives the loss is over the global batch: tests/test_cosup_dist.py)
    resolved["method"] = {"name": "cosup", "options": {"gather_negatives": False}}
    resolved["training"].update(max_source_len=64, max_target_len=16)
    return root, root / "data", manifest, resolved


def test_cosup_data_parallel_equals_one_process(cosup_setup, monkeypatch, tmp_path):
    g2s, g1, summary = first_step_grads_two_and_one(cosup_setup, monkeypatch, tmp_path, "cos")
    assert summary["steps"] == 2
    assert_same_grads(g2s, g1)
    assert any("embseq" in n and g.abs().sum() > 0 for n, g in g1.items())  # NSP reached it


def test_checkpoint_of_two_processes_resumes_in_one(setup, monkeypatch):
    root = setup[0]
    j = job(setup, "resume")
    with pytest.raises(launch.LaunchError, match="exited with code"):
        # rank 1 alone gets SIGTERM after step 3: both ranks stop there and save
        torchrun(j, monkeypatch, REPRO_TEST_SIGTERM="3:1")
    ckpts = root / "resume" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("checkpoint-*")) == ["checkpoint-2",
                                                                  "checkpoint-3"]
    assert (ckpts / "checkpoint-3" / "rng_state_1.pth").is_file()  # per-rank RNG states
    assert read_json(ckpts / "checkpoint-3" / "trainer_state.json")["global_step"] == 3
    assert not (root / "resume" / "model").exists()
    summary = in_process(j, monkeypatch)
    assert summary["resumed_from"] == str(ckpts / "checkpoint-3")
    assert summary["processes"] == 1 and summary["steps"] == 6
    assert not ckpts.exists()
    full = in_process(job(setup, "uninterrupted"), monkeypatch)
    assert full["resumed_from"] is None and full["steps"] == 6
    a, b = weights(root / "resume" / "model"), weights(root / "uninterrupted" / "model")
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-5)


def test_launch_plan_of_the_7b_cosup_runs_names_resources_and_command():
    from repro.config import load_config, training_runs
    from repro.launch import launch_plan

    cfg = load_config(ROOT / "config" / "paper_cosup.yaml")
    lines = launch_plan(cfg, training_runs(cfg))
    assert len(lines) == 12  # 11 variants, `separate` in two jobs
    run = "knowledge/cosup_train/llama2_7b/cosup/separate/seed2"
    cmd = ("python -m torch.distributed.run --standalone --nproc_per_node=8 "
           f"--shutdown-timeout={launch.SHUTDOWN_SECONDS} -m repro.train_cli ")
    assert lines[:2] == [
        f"train {run}: 8 GPUs, 640000 MB, 4320 min: {cmd}results/runs/{run}/checkpoints/"
        "launch.json",
        f"train_embseq {run}: 8 GPUs, 640000 MB, 4320 min: {cmd}results/runs/{run}/"
        "checkpoints_embseq/launch.json"]
    assert launch_plan(load_config(ROOT / "config" / "config.yaml"), []) == []
