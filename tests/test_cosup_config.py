"""Co-supervision's jobs and their params: `separate` trains in two jobs that rerun only for
the options each reads, decoding-only options retrain nothing, the paper config's settings;
and the training options of the official code (epoch StepLR, clipping of Gen's body)."""

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from repro import config as rc
from repro.methods.cosup_options import OPTION_STAGES, CoSupOptions, stage_options
from repro.train import epoch_step_schedule, schedule_options

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    return rc.load_config(ROOT / "config" / name)


def params(cfg, run, stage):
    return json.loads(rc.train_params(cfg, run, stage))


def edited(cfg, **options):
    out = copy.deepcopy(cfg)
    out["methods"]["cosup"].update(options)
    return out


def test_every_option_has_its_stages():
    from dataclasses import fields

    assert {f.name for f in fields(CoSupOptions)} == set(OPTION_STAGES)


def test_separate_trains_in_two_jobs_that_rerun_apart():
    cfg = load("config.yaml")
    sep = rc.Run("knowledge", "synth_kb", "tiny_llama", "cosup", "separate", 0)
    joint = rc.Run("knowledge", "synth_kb", "tiny_llama", "cosup", "ntp+nsp", 0)
    assert rc.training_stages(cfg, sep) == ("gen", "embseq")
    assert rc.training_stages(cfg, joint) == ("joint",)
    gen, emb = params(cfg, sep, "gen"), params(cfg, sep, "embseq")
    assert gen["method"]["options"]["stage"] == "gen" and "nsp_weight" not in gen["method"][
        "options"]
    assert emb["method"]["options"]["stage"] == "embseq"
    assert emb["method"]["options"]["supervision"] == "separate"
    # an Embseq-only option reruns the Embseq job, not Gen's; a Gen-only one the reverse
    for option, value, changes in (("nsp_weight", 0.5, {"embseq"}),
                                   ("temperature", 0.1, {"embseq"}),
                                   ("mask_passage", False, {"gen"}),
                                   ("max_passage_len", 16, {"gen", "embseq"}),
                                   ("max_retrievals", 2, set())):
        other = edited(cfg, **{option: value})
        moved = {s for s in ("gen", "embseq")
                 if rc.train_params(other, sep, s) != rc.train_params(cfg, sep, s)}
        assert moved == changes, option
    # decoding-only options retrain no joint run either
    assert rc.train_params(edited(cfg, retrieval_scope="corpus"), joint) == rc.train_params(
        cfg, joint)
    assert rc.train_params(edited(cfg, nsp_weight=0.5), joint) != rc.train_params(cfg, joint)


def test_separate_embseq_with_ntp_reads_the_ntp_options_too():
    opts = {"supervision": "separate", "separate_embseq_loss": "ntp+nsp", "mask_passage": True}
    assert "mask_passage" in stage_options(opts, "separate", "embseq")
    assert "mask_passage" not in stage_options({**opts, "separate_embseq_loss": "nsp"},
                                               "separate", "embseq")


def test_the_workflow_passes_the_models_of_a_run():
    cfg = load("config.yaml")
    sep = rc.Run("knowledge", "synth_kb_unseen", "tiny_llama", "cosup", "separate", 0)
    m = rc.cosup_models(cfg, sep)  # trained on synth_kb (train_on)
    base = "results/runs/knowledge/synth_kb/tiny_llama/cosup/separate/seed0"
    assert m == {"gen": f"{base}/model", "embseq": f"{base}/embseq", "tokenizer": None,
                 "inputs": {"model": f"{base}/model", "embseq": f"{base}/embseq"}}
    joint = rc.cosup_models(cfg, sep.__class__(**{**sep.fields(), "variant": "nsp"}))
    assert joint["embseq"].endswith("cosup/nsp/seed0/model/embseq")
    assert json.loads(rc.encoder_params(cfg, sep)) == {"embseq": f"{base}/embseq"}


def test_paper_config_settings():
    cfg = load("paper_cosup.yaml")
    runs = {r.variant: r for r in rc.expand_runs(cfg) if r.dataset == "kilt_nq"}
    assert {"separate", "ntp+nsp", "ntp", "nsp"} <= set(runs)
    res = rc.resolve(cfg, runs["ntp+nsp"])
    opts = CoSupOptions.from_dict(res["method"]["options"])
    assert (opts.max_passage_len, opts.max_retrievals, opts.embed_eos, opts.mask_passage) == (
        512, None, False, False)
    dec = res["decoding"]
    assert (dec["do_sample"], dec["temperature"], dec["top_p"], dec["top_k"], dec["seed"],
            dec["num_beams"], dec["max_total_len"]) == (True, 0.7, 0.9, 50, 2, 1, 1024)
    tr = rc.resolve(cfg, rc.training_run(cfg, runs["ntp+nsp"]))["training"]
    assert (tr["lr_scheduler"], tr["lr_step_gamma"], tr["max_grad_norm"],
            tr["clip_grad_scope"], tr["max_total_len"]) == ("epoch_step", 0.85, 1.0,
                                                            "generator", 1024)
    assert rc.resolve(cfg, runs["separate"])["decoding"]["max_total_len"] == 512
    assert cfg["report"]["baselines"] == {"knowledge": "cosup/separate"}
    assert rc.training_stages(cfg, rc.training_run(cfg, runs["separate"])) == ("gen", "embseq")


def test_epoch_step_schedule_is_the_official_steplr():
    """StepLR(step_size=1, gamma) stepped once per epoch: epoch e trains at lr x gamma^e."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=2e-5)
    sched = epoch_step_schedule(opt, num_training_steps=12, epochs=3, gamma=0.85)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [2e-5] * 4 + [2e-5 * 0.85] * 4 + [2e-5 * 0.85 ** 2] * 4
    assert lrs == pytest.approx(want, rel=1e-12)
    assert schedule_options({"lr_scheduler": "epoch_step"}) == {"epoch_step_gamma": 0.85,
                                                                "clip_grad_scope": "all"}
    with pytest.raises(rc.ConfigError, match="clip_grad_scope"):
        schedule_options({"clip_grad_scope": "gen"})


def test_generator_scope_clips_gen_body_only(tmp_path):
    """clip_grad_norm_(model.model.parameters(), 1.0) (utils/train_utils.py 95): Gen's body
    is scaled to norm 1, Embseq's gradients are untouched."""
    from repro.methods import get_method
    from repro.models import build_tiny, load_model, load_tokenizer
    from repro.train import MethodTrainer, training_arguments

    m = build_tiny("m", {"family": "llama", "config": {
        "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}, "tokenizer": {"vocab_size": 60}},
        ["a b c d e f g"] * 10, tmp_path / "m")
    tok = load_tokenizer(m["path"], "decoder-only")
    method = get_method("cosup", {}, tok, "decoder-only")
    model = method.prepare_model(load_model(m["path"], "decoder-only"), m["path"])
    training = {"batch_size": 1, "grad_accum": 1, "learning_rate": 1e-3, "epochs": 1,
                "weight_decay": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "epoch_step",
                "save_steps": 10, "max_grad_norm": 1.0, "clip_grad_scope": "generator"}
    args = training_arguments(training, tmp_path / "ckpt", 0, False)
    trainer = MethodTrainer(model=model, args=args, train_dataset=[{"x": 1}],
                            method=method, training=training)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    before = math.sqrt(sum(p.grad.pow(2).sum().item()
                           for p in model.gen.base_model.parameters()))
    norm = trainer._clip_grad_norm(trainer.model)
    assert float(norm) == pytest.approx(before, rel=1e-5)
    after = math.sqrt(sum(p.grad.pow(2).sum().item() for p in model.gen.base_model.parameters()))
    assert after == pytest.approx(1.0, rel=1e-4)
    assert all(torch.all(p.grad == 3.0) for p in model.embseq.parameters())
    assert args.max_grad_norm == 1.0 and args.lr_scheduler_type == "constant"
