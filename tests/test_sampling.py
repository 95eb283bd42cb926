"""The KV-cache beam sampler: every returned score is the log-probability a fresh, uncached
forward pass gives the returned ids; greedy equals model.generate; stops; determinism."""

import pytest
import torch
from tiny_models import build

from repro.batching import encode_record, prompt_batch
from repro.methods.sampling import beam_sample
from repro.methods.warmup import decoder_start
from repro.models import ENCODER_DECODER, load_model, load_tokenizer

SOURCES = ["the red cat", "a small bird eats the cat and the dog", "big dogs"]


@pytest.fixture(scope="module", params=["t5", "llama"])
def setup(request, tmp_path_factory):
    m = build(request.param, tmp_path_factory.mktemp(request.param), layers=2)
    tok = load_tokenizer(m["path"], m["arch"])
    torch.manual_seed(0)
    model = load_model(m["path"], m["arch"]).eval()
    feats = [encode_record({"id": str(i), "source": s, "target": "x"}, tok, m["arch"], 64, 4,
                           "\n=>") for i, s in enumerate(SOURCES)]
    batch = prompt_batch(feats, tok.pad_token_id, m["arch"])  # left-padded for decoder-only
    return m["arch"], tok, model, feats, batch


def sample(setup, **kw):
    arch, tok, model, _, batch = setup
    args = {"num_beams": 4, "num_return": 4, "max_new_tokens": 6, "pad_id": tok.pad_token_id,
            "stop_ids": {tok.eos_token_id, tok.pad_token_id},
            "decoder_start": decoder_start(model), **kw}
    return beam_sample(model, arch, batch["input_ids"], batch["attention_mask"], **args)


def fresh_logprob(model, arch, prompt: list[int], new: list[int], start: int) -> float:
    """log P(new | prompt) from one uncached, unpadded forward pass."""
    if arch == ENCODER_DECODER:
        dec = [start] + new[:-1]
        logits = model(input_ids=torch.tensor([prompt]),
                       decoder_input_ids=torch.tensor([dec])).logits[0]
    else:
        logits = model(input_ids=torch.tensor([prompt + new])).logits[0, len(prompt) - 1 : -1]
    logp = torch.log_softmax(logits.double(), -1)
    return sum(logp[t, tok].item() for t, tok in enumerate(new))


def until_stop(row: list[int], stops: set[int], seqs: tuple[list[int], ...] = ()) -> list[int]:
    for j, t in enumerate(row):
        if t in stops or any(row[max(0, j + 1 - len(s)) : j + 1] == s for s in seqs):
            return row[: j + 1]
    return row


@pytest.mark.parametrize("do_sample", [True, False])
def test_scores_are_the_uncached_log_probability_of_the_ids(setup, do_sample):
    arch, tok, model, feats, _ = setup
    torch.manual_seed(1)
    ids, scores = sample(setup, do_sample=do_sample)
    assert ids.shape[0] == 4 * len(SOURCES)
    stops = {tok.eos_token_id, tok.pad_token_id}
    for r, (row, score) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
        new = until_stop(row, stops)
        hand = fresh_logprob(model, arch, feats[r // 4]["prompt_ids"], new, decoder_start(model))
        assert score == pytest.approx(hand, abs=1e-4)
        assert all(t == tok.pad_token_id for t in row[len(new):])  # only padding after a stop
    per_example = scores.view(len(SOURCES), 4)
    assert torch.all(per_example[:, :-1] >= per_example[:, 1:])  # best first


def test_greedy_single_beam_equals_generate(setup):
    arch, tok, model, _, batch = setup
    ids, _ = sample(setup, num_beams=1, num_return=1, do_sample=False)
    ref = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         do_sample=False, num_beams=1, max_new_tokens=6,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    ref = ref[:, 1:] if arch == ENCODER_DECODER else ref[:, batch["input_ids"].shape[1]:]
    stops = {tok.eos_token_id, tok.pad_token_id}
    for got, want in zip(ids.tolist(), ref.tolist(), strict=True):
        assert until_stop(got, stops) == until_stop(want, stops)


def test_a_completed_stop_sequence_finishes_the_beam(setup):
    arch, tok, model, feats, _ = setup
    torch.manual_seed(2)
    free, _ = sample(setup, do_sample=False, num_beams=2, num_return=2)
    stop_seq = free[0, :2].tolist()  # the first beam's first two tokens become a stop sequence
    ids, scores = sample(setup, do_sample=False, num_beams=2, num_return=2,
                         stop_sequences=(stop_seq,))
    stops = {tok.eos_token_id, tok.pad_token_id}
    for r, (row, score) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
        new = until_stop(row, stops, (stop_seq,))
        assert all(t == tok.pad_token_id for t in row[len(new):])
        hand = fresh_logprob(model, arch, feats[r // 2]["prompt_ids"], new, decoder_start(model))
        assert score == pytest.approx(hand, abs=1e-4)
    assert any(r[2:].count(tok.pad_token_id) == len(r) - 2 for r in ids[:2].tolist())


def test_same_seed_same_samples_and_no_gradient(setup):
    _, _, model, _, _ = setup
    torch.manual_seed(3)
    a, sa = sample(setup)
    torch.manual_seed(3)
    b, sb = sample(setup)
    assert torch.equal(a, b) and torch.equal(sa, sb)
    assert not sa.requires_grad
    with pytest.raises(ValueError, match="num_return"):
        sample(setup, num_beams=2, num_return=3)
