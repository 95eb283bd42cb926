"""Co-supervision through the shared trainer on the tiny synthetic knowledge task: the NSP loss
goes down, the output layout loads, a sharded index of the trained Embseq serves predict_run,
an interrupted run resumes (checkpoints of the joint module), and `separate` trains Gen and
Embseq in two jobs and decodes with Embseq's queries."""

import json

import pytest
import torch
from test_train import KillAt

from repro import train as train_mod
from repro.base_model import prepare_base_model
from repro.data.sources import write_fetch
from repro.data.synthetic import generate
from repro.io import read_jsonl
from repro.predict import predict_run
from repro.retrieval import embed_shard, merge_shards

MODEL = {"kind": "tiny", "family": "llama", "tokenizer": {"vocab_size": 300},
         "config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "num_key_value_heads": 1}}


def resolved(variant, epochs, options=None, **training):
    return {"run": {"task": "knowledge", "dataset": "synth", "model": "m", "method": "cosup",
                    "variant": variant, "seed": 0},
            "method": {"name": "cosup", "options": options or {}},
            "training": {"learning_rate": 3e-3, "epochs": epochs, "batch_size": 16,
                         "grad_accum": 1, "weight_decay": 0.0, "warmup_ratio": 0.0,
                         "lr_scheduler": "linear", "max_source_len": 64, "max_target_len": 16,
                         "save_steps": 20, "eval_each_epoch": True, "precision": "auto",
                         "prompt_suffix": "\n=>", **training},
            "decoding": {"batch_size": 8, "max_new_tokens": 8, "num_beams": 1}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosup_train")
    res = generate("knowledge", {"n_people": 150, "n_companies": 60, "n_train": 300,
                                 "n_validation": 16, "n_test": 24}, 0)
    write_fetch(res, root / "data")
    manifest = prepare_base_model("m", MODEL, root / "data" / "train.jsonl", root / "base")
    return root, root / "data", manifest


@pytest.fixture(scope="module")
def trained(data):
    root, data_dir, manifest = data
    out = root / "run"
    summary = train_mod.train_run(resolved("ntp+nsp", 12), manifest, data_dir, out / "model",
                                  out / "log.jsonl", out / "checkpoints")
    return out, summary


def test_nsp_loss_goes_down(trained):
    out, summary = trained
    rows = [r for r in read_jsonl(out / "log.jsonl") if "nsp_loss" in r]
    assert summary["steps"] == 228 and len(rows) >= 10  # 300/16 -> 19 steps x 12 epochs
    first = sum(r["nsp_loss"] for r in rows[:2]) / 2
    last = sum(r["nsp_loss"] for r in rows[-2:]) / 2
    assert last < first - 0.3, (first, last)
    assert all("ntp_loss" in r and "nsp_acc" in r for r in rows)
    assert any("eval_loss" in r for r in read_jsonl(out / "log.jsonl"))


def test_output_layout_and_prediction_with_a_sharded_index(trained, data):
    out, _ = trained
    _, data_dir, _ = data
    model = out / "model"
    assert (model / "config.json").is_file() and (model / "tokenizer.json").is_file()
    assert (model / "embseq" / "config.json").is_file()
    assert json.loads((model / "cosup.json").read_text())["supervision"] == "ntp+nsp"
    assert not (out / "checkpoints").exists()
    for k in range(2):
        embed_shard(model / "embseq", data_dir / "passages.jsonl", k, 2, out / f"emb/{k}")
    meta = merge_shards([out / f"emb/{k}" for k in range(2)], out / "index")
    assert meta["n"] == len(read_jsonl(data_dir / "passages.jsonl")) and meta["dim"] == 32
    pred = out / "predictions.jsonl"
    res = predict_run(resolved("ntp+nsp", 12), "decoder-only", model,
                      data_dir / "test.jsonl", pred,
                      {"index": out / "index", "passages": data_dir / "passages.jsonl"})
    rows = read_jsonl(pred)
    assert res["n"] == len(rows) == 24
    passage_ids = {p["id"] for p in read_jsonl(data_dir / "passages.jsonl")}
    for r in rows:
        assert {"id", "hypothesis", "retrieved", "decode_seconds"} <= set(r)
        assert set(r["retrieved"]) <= passage_ids and len(r["retrieved"]) <= 3
        assert not any(m in r["hypothesis"] for m in ("[Ret]", "[Cs]", "[Ce]"))
        assert {s["passage_id"] for s in r["spans"]} <= set(r["retrieved"])
    assert sum(len(r["retrieved"]) for r in rows) > 0  # the trained Gen does retrieve
    assert any(r["spans"] for r in rows)  # and writes the span markup it was trained on


def test_interrupted_run_resumes_from_the_joint_checkpoint(data, monkeypatch):
    root, data_dir, manifest = data
    out = root / "killed"
    args = (resolved("nsp", 2, save_steps=10), manifest, data_dir, out / "model",
            out / "log.jsonl", out / "checkpoints")
    orig = train_mod.MethodTrainer.__init__

    def init(self, *a, **kw):
        kw["callbacks"] = [*kw.get("callbacks", []), KillAt(12)]
        orig(self, *a, **kw)

    monkeypatch.setattr(train_mod.MethodTrainer, "__init__", init)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train_run(*args)
    monkeypatch.setattr(train_mod.MethodTrainer, "__init__", orig)
    summary = train_mod.train_run(*args)
    assert summary["resumed_from"].endswith("checkpoint-10") and summary["steps"] == 38
    assert (out / "model" / "embseq" / "sequence_encoder.json").is_file()


def test_separate_trains_two_models_in_two_jobs_and_queries_with_embseq(data, monkeypatch):
    root, data_dir, manifest = data
    out = root / "separate"
    gen = train_mod.train_run(resolved("separate", 2, {"stage": "gen"}), manifest, data_dir,
                              out / "model", out / "log.jsonl", out / "checkpoints")
    rows = [r for r in read_jsonl(out / "log.jsonl") if "loss" in r]
    assert gen["steps"] == 38 and all("nsp_loss" not in r for r in rows)  # NTP alone
    assert not (out / "model" / "embseq").exists()
    emb = train_mod.train_run(resolved("separate", 6, {"stage": "embseq"}), manifest, data_dir,
                              out / "embseq", out / "log_embseq.jsonl",
                              out / "checkpoints_embseq")
    rows = [r for r in read_jsonl(out / "log_embseq.jsonl") if "nsp_loss" in r]
    assert emb["steps"] == 114 and all("ntp_loss" not in r for r in rows)  # NSP alone
    assert rows[-1]["nsp_loss"] < rows[0]["nsp_loss"] - 0.3
    # the Embseq reads Gen's sequences: it carries Gen's tokenizer with the special tokens
    from repro.models import load_base_model, load_tokenizer

    tok = load_tokenizer(str(out / "embseq"), "decoder-only")
    assert tok.convert_tokens_to_ids("[Ret]") == load_tokenizer(
        str(out / "model"), "decoder-only").convert_tokens_to_ids("[Ret]")
    assert (out / "embseq" / "sequence_encoder.json").is_file()
    embed_shard(out / "embseq", data_dir / "passages.jsonl", 0, 1, out / "emb/0")
    merge_shards([out / "emb/0"], out / "index")
    # decoding queries Embseq, not Gen: record the encoder each query goes through
    from repro.methods import cosup as cs

    used = []
    orig = cs.CoSup.query_embeddings

    def spy(self, model, seqs):
        used.append(self.query_encoder)
        return orig(self, model, seqs)

    monkeypatch.setattr(cs.CoSup, "query_embeddings", spy)
    pred = out / "predictions.jsonl"
    predict_run(resolved("separate", 2), "decoder-only", out / "model", data_dir / "test.jsonl",
                pred, {"index": out / "index", "passages": data_dir / "passages.jsonl",
                       "embseq": out / "embseq"})
    embseq = load_base_model(str(out / "embseq"))
    assert used and all(type(u) is type(embseq) for u in used)
    for u in used:
        for k, v in embseq.state_dict().items():
            torch.testing.assert_close(u.state_dict()[k], v)
    rows = read_jsonl(pred)
    assert len(rows) == 24 and all("spans" in r and "raw_output" in r for r in rows)
