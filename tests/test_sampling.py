"""The KV-cache beam sampler: every returned score is the log-probability a fresh, uncached
forward pass gives the returned ids; greedy equals model.generate; stops; determinism; top-k;
and its `hf` selection draws from the distribution of Hugging Face's beam search with sampling
(a statistical test against model.generate)."""

from collections import Counter

import pytest
import torch
from scipy.stats import chi2_contingency
from tiny_models import build
from transformers import StoppingCriteriaList

from repro.batching import encode_record, prompt_batch
from repro.decoding import generate, generation_config
from repro.methods.sampling import beam_sample, top_k_filter
from repro.methods.warmup import StopAfterSequence, decoder_start
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


@pytest.mark.parametrize("selection", ["gumbel", "hf"])
@pytest.mark.parametrize("do_sample", [True, False])
def test_scores_are_the_uncached_log_probability_of_the_ids(setup, do_sample, selection):
    arch, tok, model, feats, _ = setup
    torch.manual_seed(1)
    ids, scores = sample(setup, do_sample=do_sample, selection=selection)
    assert ids.shape[0] == 4 * len(SOURCES)
    stops = {tok.eos_token_id, tok.pad_token_id}
    for r, (row, score) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
        new = until_stop(row, stops)
        hand = fresh_logprob(model, arch, feats[r // 4]["prompt_ids"], new, decoder_start(model))
        assert score == pytest.approx(hand, abs=1e-4)
        assert all(t == tok.pad_token_id for t in row[len(new):])  # only padding after a stop
    rank = scores.clone()
    if selection == "hf":  # ranked by log-probability over length (length_penalty 1)
        rank /= torch.tensor([len(until_stop(r, stops)) for r in ids.tolist()])
    per_example = rank.view(len(SOURCES), 4)
    assert torch.all(per_example[:, :-1] >= per_example[:, 1:])  # best first


def test_top_k_filter():
    logp = torch.log_softmax(torch.tensor([[0.0, 3.0, 1.0, 2.0], [1.0, 1.0, 0.0, 5.0]]), -1)
    got = top_k_filter(logp, 2)
    inf = float("-inf")
    assert torch.equal(got.isinf(), torch.tensor([[True, False, True, False],
                                                  [False, False, True, False]]))  # ties kept
    assert torch.equal(got[~got.isinf()], logp[~got.isinf()])  # not renormalised
    assert torch.equal(top_k_filter(logp, 0), logp) and torch.equal(top_k_filter(logp, 9), logp)
    assert inf not in top_k_filter(logp, 4)


@pytest.mark.parametrize("selection", ["gumbel", "hf"])
def test_top_k_keeps_every_token_within_its_beams_top_k(setup, selection):
    arch, tok, model, feats, batch = setup
    start = decoder_start(model)
    for seed in range(2):
        torch.manual_seed(seed)
        ids, _ = sample(setup, num_beams=2, num_return=2, top_k=4, max_new_tokens=3,
                        selection=selection)
        for r, row in enumerate(ids.tolist()):
            prompt = feats[r // 2]["prompt_ids"]
            new = until_stop(row, {tok.eos_token_id, tok.pad_token_id})
            for j, t in enumerate(new):
                if arch == ENCODER_DECODER:
                    logits = model(input_ids=torch.tensor([prompt]), decoder_input_ids=(
                        torch.tensor([[start] + new[:j]]))).logits[0, -1]
                else:
                    logits = model(input_ids=torch.tensor([prompt + new[:j]])).logits[0, -1]
                assert t in logits.topk(4).indices.tolist()


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
    with pytest.raises(ValueError, match="selection"):
        sample(setup, selection="topk")
    with pytest.raises(ValueError, match="top_k"):
        sample(setup, selection="hf", top_k=7)  # 4 beams draw 8


# --- the `hf` selection against model.generate, in distribution ---------------------------


@pytest.fixture(scope="module")
def peaked(tmp_path_factory):
    """A tiny Llama whose next-token distributions are peaked but not degenerate (LM head x 12),
    with EOS about as likely as the third best token, and the second best token of the first
    step as a one-token separator: within 3 tokens, beams stop at EOS, at the separator and at
    the length limit, and the top-k cut matters."""
    m = build("llama", tmp_path_factory.mktemp("peaked"), layers=1)
    tok = load_tokenizer(m["path"], m["arch"])
    model = load_model(m["path"], m["arch"]).eval()
    feat = encode_record({"id": "0", "source": "the red cat", "target": "x"}, tok, m["arch"],
                         64, 4, "\n=>")
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head.mul_(12)
        first = model(input_ids=torch.tensor([feat["prompt_ids"]])).logits[0, -1]
        top = first.topk(3).indices.tolist()
        head[tok.eos_token_id] = 0.98 * head[top[2]]
    return m, tok, model, feat, [top[1]]


def outputs(ids: torch.Tensor, k: int, eos: int, sep: list[int]) -> list[tuple]:
    """Each prompt's K returned warmups in order, each cut after its stop (EOS or separator)."""
    rows = [tuple(until_stop(r, {eos}, (sep,))) for r in ids.tolist()]
    return [tuple(rows[i : i + k]) for i in range(0, len(rows), k)]


def homogeneity_p(a: list, b: list, min_count: int = 10) -> float:
    """Chi-square test that two samples come from one categorical distribution; categories
    with fewer than min_count draws in both samples together are pooled."""
    ca, cb = Counter(a), Counter(b)
    keys = [k for k in set(ca) | set(cb) if ca[k] + cb[k] >= min_count]
    table = [[c[k] for k in keys] + [sum(v for k, v in c.items() if k not in keys)]
             for c in (ca, cb)]
    return chi2_contingency(table)[1]


def test_hf_selection_samples_as_generate_does(peaked):
    """N = 3000 prompts, K = 2 beams, 3 tokens, top-k 5. The statistic is each prompt's whole
    output (both warmups, in order). Under the null hypothesis (same distribution) the p-value
    is uniform, so a threshold of 1e-3 fails a correct sampler with probability 1e-3 for a
    given seed (the seeds are fixed: the outcome is reproducible). The same statistic on the
    `gumbel` selection, a different semantics, gives p < 1e-6: the test has the power to see a
    difference of that kind."""
    m, tok, model, feat, sep = peaked
    n, k, steps, top_k = 3000, 2, 3, 5
    batch = prompt_batch([feat] * n, tok.pad_token_id, m["arch"])
    torch.manual_seed(11)
    cfg = generation_config({"num_beams": k, "max_new_tokens": steps, "do_sample": True,
                             "top_k": top_k}, tok, model.config, num_return_sequences=k)
    start = batch["input_ids"].shape[1]
    ref = generate(model, cfg, **batch, stopping_criteria=StoppingCriteriaList(
        [StopAfterSequence(sep, start)]))[:, start:]
    drawn = {}
    for seed, selection in ((12, "hf"), (13, "gumbel")):
        torch.manual_seed(seed)
        ids, _ = beam_sample(model, m["arch"], batch["input_ids"], batch["attention_mask"],
                             num_beams=k, num_return=k, max_new_tokens=steps,
                             stop_ids={tok.eos_token_id}, pad_id=tok.pad_token_id,
                             stop_sequences=(sep,), top_k=top_k, selection=selection)
        drawn[selection] = outputs(ids, k, tok.eos_token_id, sep)
    ref_out = outputs(ref, k, tok.eos_token_id, sep)
    ends = Counter(r[-1] if len(r) < steps else "length" for o in ref_out for r in o)
    assert ends[tok.eos_token_id] > 100 and ends[sep[0]] > 100 and ends["length"] > 100
    assert homogeneity_p(drawn["hf"], ref_out) > 1e-3
    assert homogeneity_p(drawn["gumbel"], ref_out) < 1e-6
