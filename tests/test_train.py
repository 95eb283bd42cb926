"""Training wiring: a run killed mid-way resumes from its last checkpoint and ends where an
uninterrupted run with the same seed ends; non-finite losses stop with the step named."""

import json
from pathlib import Path

import pytest
import torch
from tiny_models import train_config
from transformers import TrainerCallback

from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.io import write_jsonl
from repro.models import load_model

WORDS = "the red cat sees a dog small bird eats big blue".split()


def records(n, offset=0):
    out = []
    for i in range(n):
        src = " ".join(WORDS[(i * 3 + k + offset) % len(WORDS)] for k in range(4))
        out.append({"id": f"r{i}", "source": src, "target": " ".join(reversed(src.split()))})
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    write_jsonl(data / "train.jsonl", records(48))
    write_jsonl(data / "validation.jsonl", records(8, 1))
    cfg = {"kind": "tiny", "family": "t5", "tokenizer": {"vocab_size": 60},
           "config": {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1,
                      "num_decoder_layers": 1, "num_heads": 2}}
    manifest = prepare_base_model("m", cfg, data / "train.jsonl", root / "base")
    resolved = train_config(seed=3, epochs=2, batch_size=8, grad_accum=2, eval_each_epoch=True)
    return root, data, manifest, resolved


def run(setup, name, callbacks=()):
    root, data, manifest, resolved = setup
    out = root / name
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):  # inject extra callbacks (e.g. a simulated kill)
        kw["callbacks"] = [*kw.get("callbacks", []), *callbacks]
        orig(self, *a, **kw)

    train_mod.MethodTrainer.__init__ = init
    try:
        return train_mod.train_run(resolved, manifest, data, out / "model", out / "log.jsonl",
                                   out / "checkpoints"), out
    finally:
        train_mod.MethodTrainer.__init__ = orig


class KillAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated kill")


def weights(path: Path):
    return {k: v.clone() for k, v in load_model(str(path), "encoder-decoder").state_dict().items()}


def test_resume_after_kill_matches_uninterrupted(setup):
    full, full_dir = run(setup, "full")
    assert full["resumed_from"] is None and full["steps"] == 6  # 48/8/2 * 2 epochs
    with pytest.raises(KeyboardInterrupt):
        run(setup, "killed", [KillAt(5)])
    killed_dir = setup[0] / "killed"
    assert not (killed_dir / "model").exists()
    resumed, _ = run(setup, "killed")
    assert resumed["resumed_from"].endswith("checkpoint-4")
    assert resumed["steps"] == 6
    a, b = weights(full_dir / "model"), weights(killed_dir / "model")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    log = [json.loads(line) for line in (killed_dir / "log.jsonl").open()]
    assert any("eval_loss" in row for row in log) and any("loss" in row for row in log)


def test_non_finite_loss_names_the_step(setup, monkeypatch):
    calls = {"n": 0}
    real = train_mod.get_method

    def nan_after_two(*a, **kw):
        method = real(*a, **kw)
        loss_fn = method.loss

        def loss(model, batch):
            calls["n"] += 1
            value, logs = loss_fn(model, batch)
            return (value * float("nan") if calls["n"] > 2 else value), logs

        method.loss = loss
        return method

    monkeypatch.setattr(train_mod, "get_method", nan_after_two)
    with pytest.raises(train_mod.NonFiniteLossError, match="at step 2"):
        run(setup, "nan")
