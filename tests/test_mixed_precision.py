"""Mixed precision: every method's training forward (SFT's model call, warmup's sampling,
encoder, decoder and LM head, co-supervision's two models) runs under the one autocast that
`training.precision` selects, so that on a GPU all of them train in bf16 alike. bf16 is forced
on CPU by the test-only switch of repro.device; forward hooks record each Linear's output dtype.
"""

import pytest
import torch
from test_cosup import PASSAGES, RECORDS, TEXTS, TINY, TRAINING
from test_train import records
from tiny_models import build, train_config
from torch import nn

from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.batching import Collator, encode_record
from repro.device import CPU_BF16_ENV, precision
from repro.io import write_jsonl
from repro.methods import get_method
from repro.models import build_tiny, load_model, load_tokenizer

SOURCES = [("the red cat", "a dog"), ("a small bird eats the cat", "the blue bird eats")]


@pytest.fixture(autouse=True)
def cpu_bf16(monkeypatch):
    monkeypatch.setenv(CPU_BF16_ENV, "1")


def record_linear_dtypes(model: nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


def sft_or_warmup(tmp_path, family, name):
    m = build(family, tmp_path / family)
    tok = load_tokenizer(m["path"], m["arch"])
    opts = {"n": 2, "num_beams": 2, "warmup_len": 3} if name == "warmup" else {}
    method = get_method(name, opts, tok, m["arch"])
    model = method.prepare_model(load_model(m["path"], m["arch"]), m["path"])
    feats = [encode_record({"id": str(i), "source": s, "target": t}, tok, m["arch"], 32, 32,
                           "\n=>") for i, (s, t) in enumerate(SOURCES)]
    return method, model, Collator(tok.pad_token_id, m["arch"])(feats)


def cosup(tmp_path):
    path = build_tiny("m", {"family": "llama", "config": TINY, "tokenizer": {"vocab_size": 90}},
                      TEXTS, tmp_path / "base")["path"]
    write_jsonl(tmp_path / "data" / "train.jsonl", RECORDS)
    write_jsonl(tmp_path / "data" / "passages.jsonl", PASSAGES)
    method = get_method("cosup", {"supervision": "ntp+nsp"},
                        load_tokenizer(path, "decoder-only"), "decoder-only")
    model = method.prepare_model(load_model(path, "decoder-only"), path)
    feats = method.encode_split(tmp_path / "data" / "train.jsonl", TRAINING)
    return method, model, method.collator()(feats)


CASES = [("sft", "t5"), ("warmup", "t5"), ("sft", "llama"), ("warmup", "llama"),
         ("cosup", "llama")]


@pytest.mark.parametrize("name,family", CASES)
def test_every_method_runs_its_linear_layers_in_bf16(tmp_path, name, family):
    method, model, batch = (cosup(tmp_path) if name == "cosup"
                            else sft_or_warmup(tmp_path, family, name))
    model.train()
    seen = record_linear_dtypes(model)
    prec = precision("bf16")
    assert prec == "bf16"
    loss, _ = train_mod.method_loss(method, model, batch, prec, "cpu")
    assert seen and set(seen) == {torch.bfloat16}  # warmup: sampling and conditioned pass too
    assert loss.dtype == torch.float32 and torch.isfinite(loss)  # the loss itself in fp32
    loss.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    seen.clear()
    train_mod.method_loss(method, model, batch, "fp32", "cpu")
    assert set(seen) == {torch.float32}


def test_precision_switch_is_test_only(monkeypatch):
    assert precision("bf16") == "bf16"
    assert precision("auto") == "fp32"  # auto stays fp32 on CPU
    monkeypatch.delenv(CPU_BF16_ENV)
    assert precision("bf16") == "fp32"


@pytest.mark.parametrize("name", ["sft", "warmup"])
def test_the_trainer_runs_the_method_under_the_configured_precision(tmp_path, monkeypatch,
                                                                    name):
    """Through train_run: TrainingArguments(bf16) and the trainer's autocast around the loss."""
    data = tmp_path / "data"
    write_jsonl(data / "train.jsonl", records(8))
    cfg = {"kind": "tiny", "family": "t5", "tokenizer": {"vocab_size": 60},
           "config": {"d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1,
                      "num_decoder_layers": 1, "num_heads": 2}}
    manifest = prepare_base_model("m", cfg, data / "train.jsonl", tmp_path / "base")
    seen: list[list[torch.dtype]] = []
    real = train_mod.initial_model

    def hooked(manifest, seed):
        model = real(manifest, seed)
        seen.append(record_linear_dtypes(model))
        return model

    monkeypatch.setattr(train_mod, "initial_model", hooked)
    options = {"n": 2, "num_beams": 2, "warmup_len": 3} if name == "warmup" else {}
    resolved = train_config(name, options, save_steps=10, precision="bf16")
    out = tmp_path / "run"
    summary = train_mod.train_run(resolved, manifest, data, out / "model", out / "log.jsonl",
                                  out / "checkpoints")
    assert summary["steps"] == 2
    assert len(seen) == 1 and seen[0] and set(seen[0]) == {torch.bfloat16}
