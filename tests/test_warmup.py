"""Warmup Generations: the loss against hand-built per-warmup cross-entropies (both
normalisations), SFT's loss as its n = 1 case, masks, sampling without gradient, determinism,
every loss variant's formula, the separator round trip, and decoding."""

import copy
import math

import pytest
import torch
from tiny_models import build

from repro.batching import IGNORE, Collator, encode_record, prompt_batch
from repro.methods import get_method
from repro.methods import warmup as wm
from repro.methods.sft import target_cross_entropy
from repro.models import ENCODER_DECODER, load_model, load_tokenizer

RECS = [{"id": "1", "source": "the red cat", "target": "a dog"},
        {"id": "2", "source": "a small bird eats the cat", "target": "the blue bird eats"}]
DROPOUT = {"t5": {"dropout_rate": 0.1}, "llama": {}}


def make_setup(family, tmp_path_factory):
    m = build(family, tmp_path_factory.mktemp(family), **DROPOUT[family])
    tok = load_tokenizer(m["path"], m["arch"])
    model = load_model(m["path"], m["arch"])
    feats = [encode_record(r, tok, m["arch"], 64, 64, "\n=>") for r in RECS]
    batch = Collator(tok.pad_token_id, m["arch"])(feats)
    return m["arch"], tok, model, feats, batch


@pytest.fixture(scope="module", params=["t5", "llama"])
def setup(request, tmp_path_factory):
    return make_setup(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def llama_setup(tmp_path_factory):
    return make_setup("llama", tmp_path_factory)


def method(setup, **opts):
    arch, tok, *_ = setup
    return get_method("warmup", {"n": 3, "warmup_len": 4, "num_beams": 3, **opts}, tok, arch)


def fixed_warmups(tok):
    a, b = tok("red cat", add_special_tokens=False)["input_ids"], tok(
        "dog", add_special_tokens=False)["input_ids"]
    return [[a, b, []], [b, a + b, a]]  # includes an empty warmup


def hand_target_nll(model, arch, feat, warmup, sep, start):
    """(summed NLL, token count) of y given x and one warmup, from one separate model call
    (encoder recomputed)."""
    y = feat["target_ids"]
    if arch == ENCODER_DECODER:
        dec = [start] + warmup + sep + y[:-1]
        logits = model(input_ids=torch.tensor([feat["prompt_ids"]]),
                       decoder_input_ids=torch.tensor([dec])).logits[0]
        rows = logits[len(warmup) + len(sep):]
    else:
        seq = feat["prompt_ids"] + warmup + sep + y
        logits = model(input_ids=torch.tensor([seq])).logits[0]
        first = len(feat["prompt_ids"]) + len(warmup) + len(sep)
        rows = logits[first - 1 : first - 1 + len(y)]
    logp = torch.log_softmax(rows.double(), -1)
    return -sum(logp[t, y[t]].item() for t in range(len(y))), len(y)


@pytest.mark.parametrize("normalization", ["token", "sequence"])
def test_target_mean_equals_average_of_separate_ces(setup, monkeypatch, normalization):
    arch, tok, model, feats, batch = setup
    meth = method(setup, loss_normalization=normalization)
    warmups = fixed_warmups(tok)
    monkeypatch.setattr(meth, "sample_warmups", lambda m, b: warmups)
    model.eval()  # no dropout, so the batched and separate forwards are comparable
    loss, _ = meth.loss(model, batch)
    start = wm.decoder_start(model)
    hand = [hand_target_nll(model, arch, f, c, meth.sep_ids, start)
            for f, cs in zip(feats, warmups, strict=True) for c in cs]
    assert len({k for _, k in hand}) == 2  # the two targets differ in length
    if normalization == "token":  # all target tokens of the 2 x 3 sequences, as SFT
        expected = sum(s for s, _ in hand) / sum(k for _, k in hand)
    else:  # each sequence's mean, then the mean over the sequences
        expected = sum(s / k for s, k in hand) / len(hand)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("normalization", ["token", "sequence"])
def test_one_empty_warmup_and_separator_give_the_sft_loss(setup, monkeypatch, normalization):
    """n = 1, an empty warmup and an empty separator condition y on nothing but x: the loss is
    SFT's on the same batch, under either normalisation (the defaults are the same)."""
    arch, tok, model, feats, batch = setup
    meth = method(setup, n=1, num_beams=1, loss_normalization=normalization)
    meth.sep_ids = []
    monkeypatch.setattr(meth, "sample_warmups", lambda m, b: [[[]] for _ in feats])
    sft = get_method("sft", {"loss_normalization": normalization}, tok, arch)
    model.eval()
    warm, _ = meth.loss(model, batch)
    ref, _ = sft.loss(model, batch)
    assert warm.item() == pytest.approx(ref.item(), abs=1e-6)
    assert get_method("sft", {}, tok, arch).opts.loss_normalization == (
        wm.WarmupOptions().loss_normalization)  # the same default
    # and SFT's two normalisations differ here (targets of different lengths)
    logits = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).logits
    shift = arch != ENCODER_DECODER
    assert (target_cross_entropy(logits, batch["labels"], shift, "token").item()
            != pytest.approx(target_cross_entropy(logits, batch["labels"], shift,
                                                  "sequence").item(), abs=1e-4))


def test_shared_prompt_pass_equals_full_sequences_in_value_and_gradient(llama_setup):
    """Decoder-only: the prompt run once with its cache repeated gives the same hidden states
    (at every labelled position, the first warmup token included) and gradients as n full
    sequences."""
    arch, tok, model, feats, batch = llama_setup
    meth = method(llama_setup)
    wb = meth.build(batch, fixed_warmups(tok))
    model.eval()
    keep = wb.labels[:, 1:] != IGNORE

    def head(h):
        model.zero_grad()
        logp = torch.log_softmax(model.get_output_embeddings()(h[keep]), -1)
        picked = logp.gather(-1, wb.labels[:, 1:][keep][:, None]).sum()
        picked.backward()
        return picked.item(), [p.grad.clone() for p in model.parameters()]

    shared, g_shared = head(wm.shared_prompt_hidden(model, batch, wb, 3))
    full = model.base_model(input_ids=wb.input_ids,
                            attention_mask=wb.attention_mask).last_hidden_state[:, :-1]
    ref, g_ref = head(full)
    model.zero_grad()
    assert shared == pytest.approx(ref, abs=1e-5)
    for a, b in zip(g_shared, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_masks_cover_warmup_separator_and_prompt_exactly(setup):
    arch, tok, model, feats, batch = setup
    meth = method(setup)
    warmups = fixed_warmups(tok)
    wb = meth.build(batch, warmups, wm.decoder_start(model))
    sep = meth.sep_ids
    row = 0
    for f, cs in zip(feats, warmups, strict=True):
        for c in cs:
            lab = wb.labels[row]
            w = wb.warmup_mask[row].nonzero().flatten().tolist()
            t = wb.target_mask[row].nonzero().flatten().tolist()
            assert [lab[i].item() for i in w] == c + sep
            assert [lab[i].item() for i in t] == f["target_ids"]
            if arch != ENCODER_DECODER:
                p = len(f["prompt_ids"])
                assert (lab[:p] == IGNORE).all() and w[0] == p
                assert wb.input_ids[row, :p].tolist() == f["prompt_ids"]
            assert not set(w) & set(t)
            labelled = (lab != IGNORE).nonzero().flatten().tolist()
            assert sorted(w + t) == labelled  # nothing else carries a label
            row += 1


@pytest.mark.parametrize("sampler,fn", [("kv", "beam_sample"), ("generate", "generate")])
def test_sampling_has_no_gradient_and_eval_mode(setup, monkeypatch, sampler, fn):
    arch, tok, model, feats, batch = setup
    meth = method(setup, sampler=sampler)
    seen = {}
    real = getattr(wm, fn)

    def spy(m, *a, **kw):
        seen["grad"], seen["training"] = torch.is_grad_enabled(), m.training
        out = real(m, *a, **kw)
        seen["requires_grad"] = (out[0] if isinstance(out, tuple) else out).requires_grad
        return out

    monkeypatch.setattr(wm, fn, spy)
    model.train()
    loss, _ = meth.loss(model, batch)
    assert seen == {"grad": False, "training": False, "requires_grad": False}
    assert model.training  # restored after sampling
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad()


@pytest.mark.parametrize("opts", [{}, {"selection": "hf", "top_k": 50},
                                  {"sampler": "generate", "top_k": 50}])
def test_samples_are_ids_cut_at_separator(setup, opts):
    arch, tok, model, feats, batch = setup
    meth = method(setup, warmup_len=6, **opts)
    torch.manual_seed(0)
    warmups = meth.sample_warmups(model, batch)
    assert len(warmups) == 2 and all(len(cs) == 3 for cs in warmups)
    for cs in warmups:
        for c in cs:
            assert len(c) <= 6 and all(isinstance(t, int) for t in c)
            assert tok.eos_token_id not in c and tok.pad_token_id not in c


def test_same_seed_same_loss(setup):
    arch, tok, model, feats, batch = setup
    model.train()
    losses = []
    for _ in range(2):
        torch.manual_seed(123)
        losses.append(method(setup).loss(model, batch)[0].item())
    assert losses[0] == losses[1] and math.isfinite(losses[0])


def test_routed_forward_reaches_the_models_own_forward_and_survives_a_copy(setup):
    """The conditioned pass through model(...) equals the direct computation; other calls reach
    the model's forward unchanged; a deep copy routes to the copy's own parameters."""
    arch, tok, model, feats, batch = setup
    meth = method(setup)
    model.eval()
    wb = meth.build(batch, fixed_warmups(tok), wm.decoder_start(model))
    direct = wm.conditioned_logprobs(model, batch, wb, 3, False)
    wm.route_conditioned_forward(model)
    wm.route_conditioned_forward(model)  # idempotent
    routed = meth.forward_logprobs(model, batch, wb)
    torch.testing.assert_close(routed, direct)
    plain = model(**batch).logits  # an ordinary call (labels given: the HF loss path)
    assert plain.shape[0] == batch["input_ids"].shape[0]
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)
    assert not torch.allclose(meth.forward_logprobs(twin, batch, wb), direct)
    torch.testing.assert_close(meth.forward_logprobs(model, batch, wb), direct)


# --- each variant's formula on a hand example --------------------------------------------

# two examples x two warmups; per row: log-probs of 2 warmup tokens then 2 target tokens
TOK = torch.tensor([[-1.0, -2.0, -0.5, -1.5],
                    [-0.2, -0.0, -2.0, -1.0],
                    [-3.0, -1.0, -0.1, -0.3],
                    [-0.5, -0.5, -1.0, -1.0]])
WMASK = torch.tensor([[1, 1, 0, 0]] * 4).bool()
TMASK = torch.tensor([[0, 0, 1, 1]] * 4).bool()


def test_variant_target_mean():
    ce = [1.0, 1.5, 0.2, 1.0]  # mean NLL of the two target tokens per row
    got = wm.warmup_loss(TOK, TMASK, WMASK, 2, "target_mean")
    assert got.item() == pytest.approx(sum(ce) / 4)


def test_token_normalisation_weights_rows_by_their_tokens():
    # rows with 1, 2, 3 and 2 target tokens; n = 2
    tok = torch.tensor([[-1.0, 0.0, 0.0], [-2.0, -4.0, 0.0], [-3.0, -3.0, -3.0],
                        [-0.5, -1.5, 0.0]])
    tmask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 0]]).bool()
    wmask = torch.zeros_like(tmask)
    got = wm.warmup_loss(tok, tmask, wmask, 2, "target_mean", "token")
    assert got.item() == pytest.approx((1 + 6 + 9 + 2) / 8)
    got = wm.warmup_loss(tok, tmask, wmask, 2, "target_mean", "sequence")
    assert got.item() == pytest.approx((1 + 3 + 3 + 1) / 4)
    # joint under token: every counted token of the batch once (here the same tokens)
    got = wm.warmup_loss(tok, tmask, wmask, 2, "joint", "token")
    assert got.item() == pytest.approx((1 + 6 + 9 + 2) / 8)


def test_variant_joint():
    joint = [5.0 / 4, 3.2 / 4, 4.4 / 4, 3.0 / 4]
    got = wm.warmup_loss(TOK, TMASK, WMASK, 2, "joint")
    assert got.item() == pytest.approx(sum(joint) / 4)


def test_variant_reward_weighted():
    ll = [[-2.0, -3.0], [-0.4, -2.0]]  # log P(y | c_i, x), summed
    joint = [[5.0 / 4, 3.2 / 4], [4.4 / 4, 3.0 / 4]]
    expected = 0.0
    for b in range(2):
        z = sum(math.exp(v) for v in ll[b])
        expected += sum(math.exp(ll[b][i]) / z * joint[b][i] for i in range(2))
    got = wm.warmup_loss(TOK, TMASK, WMASK, 2, "reward_weighted")
    assert got.item() == pytest.approx(expected / 2)


def test_variant_reinforce_value_and_gradient():
    ce = [[1.0, 1.5], [0.2, 1.0]]
    g = [[-3.0, -0.2], [-4.0, -1.0]]  # log P(c_i | x): warmup tokens summed
    expected = sum(map(sum, ce)) / 4
    for b in range(2):
        r = [-c for c in ce[b]]
        mean = sum(r) / 2
        expected -= sum((r[i] - mean) * g[b][i] for i in range(2)) / 4
    tok = TOK.clone().requires_grad_(True)
    got = wm.warmup_loss(tok, TMASK, WMASK, 2, "reinforce")
    assert got.item() == pytest.approx(expected)
    got.backward()
    # the reward is a constant: the warmup tokens' gradient is -advantage / 4 per token
    adv = [[0.25, -0.25], [0.4, -0.4]]  # reward -CE minus its mean over the two warmups
    for b in range(2):
        for i in range(2):
            assert tok.grad[2 * b + i, 0].item() == pytest.approx(-adv[b][i] / 4)


def test_unknown_options_rejected(setup):
    with pytest.raises(ValueError, match="unknown options"):
        method(setup, beams=3)
    with pytest.raises(ValueError, match="loss must be one of"):
        method(setup, loss="nope")
    with pytest.raises(ValueError, match="loss_normalization"):
        method(setup, loss_normalization="example")
    with pytest.raises(ValueError, match="selection"):
        method(setup, selection="topk")


# --- the separator ------------------------------------------------------------------------

def newline_dropping(tok):
    """The tokenizer with mT5's treatment of a newline: its normaliser maps "\n" to a space,
    which becomes a bare "▁"."""
    from tokenizers import normalizers

    tok = copy.deepcopy(tok)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.Sequence([backend.normalizer,
                                               normalizers.Replace("\n", " ")])
    return tok


def test_separator_round_trip(setup):
    arch, tok, *_ = setup
    assert wm.separator_problem(tok, " || ") is None
    assert wm.separator_problem(tok, " => ") is None
    drops = newline_dropping(tok)
    ids = drops("\n", add_special_tokens=False)["input_ids"]
    assert ids and drops.unk_token_id not in ids  # it encodes to something: not an <unk>
    problem = wm.separator_problem(drops, "\n")
    assert problem and "decode to" in problem
    with pytest.raises(ValueError, match=r"separator '\\n' encodes to .* choose another"):
        get_method("warmup", {"separator": "\n"}, drops, arch)
    assert "<unk>" in wm.separator_problem(tok, "\n")  # the tiny vocabulary has no newline


# --- decoding ----------------------------------------------------------------------------

def test_cut_warmup():
    assert wm.cut_warmup([5, 6, 9, 9, 7], [9, 9], {1, 0}) == ([5, 6], True)
    assert wm.cut_warmup([5, 1, 9, 9], [9, 9], {1, 0}) == ([5], False)  # EOS inside
    assert wm.cut_warmup([5, 6, 7], [9, 9], {1, 0}) == ([5, 6, 7], False)  # no separator
    assert wm.cut_warmup([9, 9, 5], [9, 9], {1, 0}) == ([], True)


def test_decode_returns_text_after_separator(setup, monkeypatch):
    arch, tok, model, feats, batch = setup
    meth = method(setup)
    sep = meth.sep_ids
    red, dog = (tok(w, add_special_tokens=False)["input_ids"] for w in ("red", "dog"))
    # stage 1 (forced): example 0 emits a separator, example 1 hits EOS first (no separator)
    stage1 = [red + sep + dog, dog + [tok.eos_token_id]]
    real = wm.generate
    calls = []

    def fake(m, a, b, cfg, **kw):
        calls.append(cfg)
        if len(calls) == 1:
            width = max(map(len, stage1))
            rows = [r + [tok.pad_token_id] * (width - len(r)) for r in stage1]
            if arch == ENCODER_DECODER:
                rows = [[0] + r for r in rows]
            return torch.tensor(rows)
        return real(m, a, b, cfg, **kw)

    monkeypatch.setattr(wm, "generate", fake)
    gen_feats = [encode_record(r, tok, arch, 64, 4, "\n=>") for r in RECS]
    pb = prompt_batch(gen_feats, tok.pad_token_id, arch)
    targets = []
    real_targets = meth.decode_targets

    def spy_targets(m, b, prefixes, d):
        targets.append(prefixes)
        return [[*dog], [*red]]

    monkeypatch.setattr(meth, "decode_targets", spy_targets)
    model.eval()
    out = meth.decode(model, pb, {"num_beams": 2, "max_new_tokens": 5})
    assert targets[0] == [red + sep, dog + sep]  # SEP appended after each warmup
    assert [o["separator_found"] for o in out] == [True, False]
    assert [o["warmup"] for o in out] == ["red", "dog"]
    assert [o["hypothesis"] for o in out] == ["dog", "red"]
    # and the real second stage runs on both architectures, returning the text after SEP
    monkeypatch.setattr(meth, "decode_targets", real_targets)
    calls.clear()
    out = meth.decode(model, pb, {"num_beams": 2, "max_new_tokens": 5})
    assert len(out) == 2 and all(isinstance(o["hypothesis"], str) for o in out)
