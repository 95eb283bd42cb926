"""Decoding follows the config alone: a checkpoint whose generation_config.json samples (as
Llama-3.2-1B's and Llama-2-7B's do) is decoded greedily / by beam search, identically on every
call, by SFT, by both stages of warmup decoding and by the warmup sampler; a decode that the
config asks to sample is seeded from the config."""

import json

import pytest
import torch
from tiny_models import build
from transformers import GenerationConfig

from repro.batching import Collator, encode_record, prompt_batch
from repro.decoding import generate, generation_config
from repro.io import read_jsonl, write_jsonl
from repro.methods import get_method
from repro.methods.sampling import beam_sample
from repro.methods.warmup import decoder_start
from repro.models import ENCODER_DECODER, load_model, load_tokenizer
from repro.predict import predict_run

SOURCES = ["the red cat", "a small bird eats the cat and the dog", "big dogs"]
# what meta-llama/Llama-3.2-1B's generation_config.json says
HUB_SAMPLING = {"do_sample": True, "temperature": 0.6, "top_p": 0.9}
DECODING = {"num_beams": 3, "max_new_tokens": 6, "batch_size": 8}


@pytest.fixture(scope="module", params=["t5", "llama"])
def ckpt(request, tmp_path_factory):
    """A tiny checkpoint saved with a generation_config.json that samples."""
    m = build(request.param, tmp_path_factory.mktemp(request.param), layers=2)
    gen = GenerationConfig.from_pretrained(m["path"])
    gen.update(**HUB_SAMPLING)
    gen.save_pretrained(m["path"])
    saved = json.loads((tmp_path_factory.getbasetemp() / m["path"] / "generation_config.json")
                       .read_text())
    assert saved["do_sample"] is True and saved["temperature"] == 0.6
    tok = load_tokenizer(m["path"], m["arch"])
    model = load_model(m["path"], m["arch"]).eval()
    assert model.generation_config.do_sample is True
    feats = [encode_record({"id": str(i), "source": s, "target": "a dog"}, tok, m["arch"], 64, 8,
                           "\n=>") for i, s in enumerate(SOURCES)]
    return m, tok, model, feats, prompt_batch(feats, tok.pad_token_id, m["arch"])


def twice(fn):
    """fn() under two different torch seeds."""
    out = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        out.append(fn())
    return out


def strip(rows, tok):
    stops = {tok.eos_token_id, tok.pad_token_id}
    out = []
    for r in rows:
        end = next((j for j, t in enumerate(r) if t in stops), len(r))
        out.append(r[:end])
    return out


def beam_reference(m, tok, model, batch, beams, max_new):
    """Hugging Face's beam search (greedy for 1 beam) as the KV sampler replays it, without
    sampling: the best sequence per prompt, independent of any generation config."""
    ids, _ = beam_sample(model, m["arch"], batch["input_ids"], batch["attention_mask"],
                         num_beams=beams, num_return=1, max_new_tokens=max_new,
                         stop_ids={tok.eos_token_id}, pad_id=tok.pad_token_id,
                         decoder_start=decoder_start(model), do_sample=False, selection="hf")
    return strip(ids.tolist(), tok)


def test_the_checkpoint_alone_would_sample(ckpt):
    """The control: model.generate left to the checkpoint's file samples (differs by seed)."""
    m, tok, model, _, batch = ckpt
    a, b = twice(lambda: model.generate(**batch, max_new_tokens=6,
                                        pad_token_id=tok.pad_token_id).tolist())
    assert a != b


def test_generation_config_from_the_decoding_section_only(ckpt):
    m, tok, model, _, batch = ckpt
    cfg = generation_config(DECODING, tok, model.config)
    assert (cfg.do_sample, cfg.num_beams, cfg.max_new_tokens) == (False, 3, 6)
    assert (cfg.temperature, cfg.top_p, cfg.top_k) == (1.0, 1.0, 50)  # not the checkpoint's
    assert cfg.pad_token_id == tok.pad_token_id and cfg.eos_token_id == tok.eos_token_id
    assert cfg.decoder_start_token_id == (0 if m["arch"] == ENCODER_DECODER else None)
    sampled = generation_config({**DECODING, "do_sample": True, "top_p": 0.8}, tok, model.config,
                                num_beams=1)
    assert (sampled.do_sample, sampled.num_beams, sampled.top_p) == (True, 1, 0.8)
    before = model.generation_config
    generate(model, cfg, **batch)
    assert model.generation_config is before  # restored after the call


@pytest.mark.parametrize("beams", [1, 3])
def test_sft_decodes_greedy_or_beam_whatever_the_checkpoint_says(ckpt, beams):
    m, tok, model, _, batch = ckpt
    sft = get_method("sft", {}, tok, m["arch"])
    decoding = {**DECODING, "num_beams": beams}
    a, b = twice(lambda: [o["hypothesis"] for o in sft.decode(model, batch, decoding)])
    assert a == b
    ref = beam_reference(m, tok, model, batch, beams, decoding["max_new_tokens"])
    assert a == [tok.decode(r, skip_special_tokens=True).strip() for r in ref]


def test_warmup_decoding_both_stages_and_sampler_are_deterministic(ckpt, monkeypatch):
    m, tok, model, _, batch = ckpt
    meth = get_method("warmup", {"n": 2, "warmup_len": 4, "num_beams": 2, "do_sample": False,
                                 "sampler": "generate"}, tok, m["arch"])
    a, b = twice(lambda: meth.decode(model, batch, DECODING))
    assert [(o["warmup"], o["hypothesis"]) for o in a] == [
        (o["warmup"], o["hypothesis"]) for o in b]
    # stage 1 is beam search of warmup_len tokens (then cut at the separator)
    ref = beam_reference(m, tok, model, batch, DECODING["num_beams"], 4)
    assert [o["warmup"] for o in a] == [
        tok.decode(meth_cut(meth, r), skip_special_tokens=True).strip() for r in ref]
    # stage 2 (beam search after `warmup SEP`) got the config's settings, not the checkpoint's
    seen = []
    real = generate

    def spy(model_, cfg, **inputs):
        seen.append(cfg)
        return real(model_, cfg, **inputs)

    monkeypatch.setattr("repro.methods.base.generate_with", spy)
    meth.decode(model, batch, DECODING)
    assert [(c.do_sample, c.num_beams) for c in seen] == [(False, 3)] * len(seen)
    assert seen[0].max_new_tokens == 4 and seen[-1].max_new_tokens == 6
    # the training sampler through model.generate, without sampling
    train_batch = Collator(tok.pad_token_id, m["arch"])(
        [encode_record({"id": "0", "source": s, "target": "a dog"}, tok, m["arch"], 64, 8,
                       "\n=>") for s in SOURCES])
    w1, w2 = twice(lambda: meth.sample_warmups(model, train_batch))
    assert w1 == w2


def meth_cut(meth, row):
    return row[: next((j for j in range(len(row))
                       if row[j : j + len(meth.sep_ids)] == meth.sep_ids), len(row))]


def test_predict_is_greedy_unless_the_config_samples_then_seeded(ckpt, tmp_path):
    m, tok, model, _, _ = ckpt
    test = tmp_path / "test.jsonl"
    write_jsonl(test, [{"id": str(i), "source": s, "target": "x"} for i, s in enumerate(SOURCES)])

    def predict(name, **decoding):
        resolved = {"run": {"method": "sft", "variant": "default", "seed": 0},
                    "method": {"name": "sft", "options": {}},
                    "training": {"max_source_len": 64, "prompt_suffix": "\n=>"},
                    "decoding": {**DECODING, "num_beams": 1, **decoding}}
        torch.manual_seed(len(name))  # whatever the global RNG holds before
        predict_run(resolved, m["arch"], m["path"], test, tmp_path / f"{name}.jsonl")
        return [p["hypothesis"] for p in read_jsonl(tmp_path / f"{name}.jsonl")]

    assert predict("greedy") == predict("greedy-again")
    sampled = predict("s", do_sample=True, seed=3)
    assert predict("s-again", do_sample=True, seed=3) == sampled  # seeded from the config
    others = [predict(f"s{seed}", do_sample=True, seed=seed) for seed in (4, 5, 6)]
    assert any(o != sampled for o in others)  # it does sample
