"""Tokenizer/model round trip, batching masks, the SFT loss against a hand computation."""

import math

import pytest
import torch
from tiny_models import build

from repro.batching import IGNORE, Collator, encode_record, prompt_batch
from repro.config import ConfigError
from repro.methods import get_method
from repro.models import (
    DECODER_ONLY,
    ENCODER_DECODER,
    load_model,
    load_tokenizer,
    resolve_hf,
)

RECS = [{"id": "1", "source": "the red cat", "target": "a dog"},
        {"id": "2", "source": "a small bird eats the cat", "target": "the blue bird"}]


@pytest.fixture(scope="module", params=["t5", "llama"])
def tiny(request, tmp_path_factory):
    family = request.param
    out = tmp_path_factory.mktemp(family)
    return build(family, out)


def test_round_trip(tiny):
    tok = load_tokenizer(tiny["path"], tiny["arch"])
    model = load_model(tiny["path"], tiny["arch"])
    assert tiny["arch"] == (ENCODER_DECODER if tiny["family"] == "t5" else DECODER_ONLY)
    ids = tok("the red cat")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "the red cat"
    if tiny["arch"] == ENCODER_DECODER:
        assert ids[-1] == tok.eos_token_id
    else:
        assert ids[0] == tok.bos_token_id
    assert model.config.vocab_size == len(tok) == tiny["vocab_size"]
    assert sum(p.numel() for p in model.parameters()) == tiny["n_params"]


def test_masks_cover_prompt_and_padding(tiny):
    tok = load_tokenizer(tiny["path"], tiny["arch"])
    feats = [encode_record(r, tok, tiny["arch"], 64, 64, "\n=>") for r in RECS]
    batch = Collator(tok.pad_token_id, tiny["arch"])(feats)
    for i, f in enumerate(feats):
        n_target = len(f["target_ids"])
        labels = batch["labels"][i]
        assert (labels != IGNORE).sum().item() == n_target
        kept = labels[labels != IGNORE].tolist()
        assert kept == f["target_ids"]
        if tiny["arch"] == DECODER_ONLY:
            n = len(f["prompt_ids"]) + n_target
            assert batch["attention_mask"][i].sum().item() == n
            assert (labels[: len(f["prompt_ids"])] == IGNORE).all()
            assert f["target_ids"][-1] == tok.eos_token_id
    gen = prompt_batch(feats, tok.pad_token_id, tiny["arch"])
    if tiny["arch"] == DECODER_ONLY:  # left padding: prompts end at the last column
        assert gen["attention_mask"][:, -1].all()


def hand_loss(model, batch, arch):
    """Mean over target tokens of -log softmax(logits)[gold], token by token."""
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       labels=batch["labels"]).logits
    total, count = 0.0, 0
    labels = batch["labels"]
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if arch == ENCODER_DECODER:
                gold, row = labels[b, t].item(), logits[b, t]
            else:
                if t == 0:
                    continue
                gold, row = labels[b, t].item(), logits[b, t - 1]
            if gold == IGNORE:
                continue
            total += -torch.log_softmax(row.double(), -1)[gold].item()
            count += 1
    return total / count


def test_sft_loss_equals_hand_computation(tiny):
    torch.manual_seed(0)
    tok = load_tokenizer(tiny["path"], tiny["arch"])
    model = load_model(tiny["path"], tiny["arch"]).eval()
    feats = [encode_record(r, tok, tiny["arch"], 64, 64, "\n=>") for r in RECS]
    batch = Collator(tok.pad_token_id, tiny["arch"])(feats)
    loss, _ = get_method("sft", {}, tok, tiny["arch"]).loss(model, batch)
    assert loss.item() == pytest.approx(hand_loss(model, batch, tiny["arch"]), abs=1e-5)
    assert math.isfinite(loss.item())


def test_sft_decode_returns_text(tiny):
    tok = load_tokenizer(tiny["path"], tiny["arch"])
    model = load_model(tiny["path"], tiny["arch"]).eval()
    feats = [encode_record(r, tok, tiny["arch"], 64, 4, "\n=>") for r in RECS]
    batch = prompt_batch(feats, tok.pad_token_id, tiny["arch"])
    out = get_method("sft", {}, tok, tiny["arch"]).decode(
        model, batch, {"num_beams": 2, "max_new_tokens": 5})
    assert len(out) == 2 and all(isinstance(o["hypothesis"], str) for o in out)


def test_missing_local_model_path_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.mt5\.path.*does not exist"):
        resolve_hf("mt5", {"kind": "hf", "family": "mt5", "path": str(tmp_path / "nope")})


def test_unreachable_hub_id_names_the_key(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"models\.big\.path"):
        resolve_hf("big", {"kind": "hf", "family": "t5", "path": "no-such-org/no-such-model-xyz"})


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope", {}, None, ENCODER_DECODER)
