"""Co-supervision: the NSP loss against hand computations, query/sequence embedding positions,
NTP label positions, gradient flow per supervision, the width projection, saving, and the
retrieval-augmented decoding loop."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from repro.batching import IGNORE, encode_record, prompt_batch
from repro.config import ConfigError
from repro.io import write_jsonl
from repro.methods import cosup as cs
from repro.methods import get_method
from repro.models import build_tiny, load_base_model, load_model, load_tokenizer
from repro.retrieval import PassageIndex, build_index, hidden_states, pad_batch

TEXTS = ["Where was Ana Rive born?", "Tolo", "Who founded Kesa Works?", "Ana Rive", "1950",
         "Ana Rive was born in Tolo in 1950.", "Kesa Works was founded in 1901 by Ana Rive.",
         "Bo Dele works as a baker at Mira Foods.", "What does Bo Dele do?", "baker"] * 6
TINY = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}
PASSAGES = [{"id": "P0", "title": "Ana Rive", "text": "Ana Rive was born in Tolo in 1950."},
            {"id": "P1", "title": "Kesa Works",
             "text": "Kesa Works was founded in 1901 by Ana Rive."},
            {"id": "P2", "title": "Bo Dele", "text": "Bo Dele works as a baker at Mira Foods."}]
RECORDS = [
    {"id": "a", "source": "Where was Ana Rive born?", "target": "Tolo", "answers": ["Tolo"],
     "provenance": [{"wikipedia_id": "P0", "title": "Ana Rive"}]},
    {"id": "b", "source": "Who founded Kesa Works?", "target": "Ana Rive",
     "answers": ["Ana Rive"], "provenance": [{"wikipedia_id": "P1", "title": "Kesa Works"}]},
    {"id": "c", "source": "What does Bo Dele do?", "target": "baker", "answers": ["baker"],
     "provenance": [{"wikipedia_id": "P2", "title": "Bo Dele"}]},
    {"id": "d", "source": "Where was Ana Rive born?", "target": "Tolo", "answers": ["Tolo"],
     "provenance": [{"wikipedia_id": "P0", "title": "Ana Rive"}]},
]
TRAINING = {"max_source_len": 32, "max_target_len": 16, "prompt_suffix": "\n=>"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosup")
    m = build_tiny("m", {"family": "llama", "config": TINY, "tokenizer": {"vocab_size": 90}},
                   TEXTS, root / "base")
    wide = build_tiny("w", {"family": "llama", "config": {**TINY, "hidden_size": 24},
                            "tokenizer": {"vocab_size": 90}}, TEXTS, root / "wide")
    write_jsonl(root / "data" / "train.jsonl", RECORDS)
    write_jsonl(root / "data" / "passages.jsonl", PASSAGES)
    return root, m["path"], wide["path"]


def setup_method(base, supervision="ntp+nsp", **opts):
    root, path, _ = base
    tok = load_tokenizer(path, "decoder-only")
    method = get_method("cosup", {"supervision": supervision, **opts}, tok, "decoder-only")
    torch.manual_seed(0)
    model = method.prepare_model(load_model(path, "decoder-only"), path)
    feats = method.encode_split(root / "data" / "train.jsonl", TRAINING)
    return method, model, feats, method.collator()(feats)


# --- the NSP loss ---------------------------------------------------------------------------


def hand_infonce(q, p, pos, t=1.0):
    total = 0.0
    for qi, j in zip(q, pos, strict=True):
        s = [sum(a * b for a, b in zip(qi, pk, strict=True)) / t for pk in p]
        total += -(s[j] - math.log(sum(math.exp(v) for v in s)))
    return total / len(q)


@pytest.mark.parametrize("t", [1.0, 0.5])
def test_nsp_loss_equals_hand_computation(t):
    q = [[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]
    p = [[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]]
    pos = [0, 2, 1]
    got = cs.nsp_loss(torch.tensor(q), torch.tensor(p), torch.tensor(pos), t)
    assert got.item() == pytest.approx(hand_infonce(q, p, pos, t), abs=1e-6)
    row0 = -(1 / t - math.log(math.exp(1 / t) + math.exp(2 / t) + 1))  # spelled out
    assert hand_infonce(q[:1], p, pos[:1], t) == pytest.approx(row0)


def test_nsp_loss_ties_and_single_passage():
    q = torch.zeros(2, 3)  # every score 0: loss log(P) whichever passage is positive
    assert cs.nsp_loss(q, torch.randn(4, 3), torch.tensor([0, 3])).item() == \
        pytest.approx(math.log(4))
    q = torch.tensor([[1.0, 2.0]])
    p = torch.tensor([[3.0, 0.0], [3.0, 0.0]])  # the positive tied with a duplicate negative
    assert cs.nsp_loss(q, p, torch.tensor([1])).item() == pytest.approx(math.log(2))
    one = cs.nsp_loss(torch.randn(3, 2), torch.randn(1, 2), torch.zeros(3, dtype=torch.long))
    assert one.item() == pytest.approx(0.0, abs=1e-7)


def test_nsp_loss_empty_and_bad_shapes():
    q = torch.zeros(0, 4, requires_grad=True)
    p = torch.randn(2, 4, requires_grad=True)
    loss = cs.nsp_loss(q, p, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and p.grad is not None
    with pytest.raises(ValueError, match="queries \\[Q, d\\]"):
        cs.nsp_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="positives must be \\[2\\]"):
        cs.nsp_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))


def test_gather_negatives_is_identity_without_distributed():
    p = torch.randn(3, 4)
    assert cs.gather_negatives(p, torch.arange(3)) is p


# --- options ---------------------------------------------------------------------------------


def test_supervision_from_option_or_variant_name():
    assert cs.CoSup.options_for_variant({}, "nsp") == {"supervision": "nsp"}
    assert cs.CoSup.options_for_variant({"supervision": "ntp"}, "nsp") == {"supervision": "ntp"}
    assert cs.CoSup.options_for_variant({}, "lambda0.1") == {}
    assert cs.CoSupOptions.from_dict({}).supervision == "ntp+nsp"
    with pytest.raises(ConfigError, match="unknown options \\['lamda'\\]"):
        cs.CoSupOptions.from_dict({"lamda": 1})
    with pytest.raises(ConfigError, match="embed_position must be one of"):
        cs.CoSupOptions.from_dict({"embed_position": "first"})
    with pytest.raises(ConfigError, match="decoder-only"):
        cs.CoSup({}, None, "encoder-decoder")


# --- encoding and embedding positions ---------------------------------------------------------


@pytest.mark.parametrize("mask_passage", [True, False])
def test_instance_tokens_and_ntp_labels(base, mask_passage):
    method, _, feats, _ = setup_method(base, mask_passage=mask_passage)
    tok = method.tokenizer
    f = feats[0]
    prompt = tok("Where was Ana Rive born?\n=>")["input_ids"]
    insert = method.insert_ids(PASSAGES[0])
    answer = tok("Tolo", add_special_tokens=False)["input_ids"]
    assert tok.decode(insert) == "Ana Rive :: Ana Rive was born in Tolo in 1950."
    ret, cs, ce, eos = method.ret_id, method.cs_id, method.ce_id, tok.eos_token_id
    # prompt [Ret] passage [Cs] answer [Ce] </s>: the official sequence
    assert f["input_ids"] == prompt + [ret] + insert + [cs] + answer + [ce, eos]
    given = [IGNORE] * (len(insert) + 1) if mask_passage else insert + [cs]
    assert f["labels"] == [IGNORE] * len(prompt) + [ret] + given + answer + [ce, eos]
    emb = method.embseq_tokenizer("Ana Rive was born in Tolo in 1950.")["input_ids"]
    assert f["evidence"] == ["P0"] and f["evidence_ids"] == [emb + [tok.eos_token_id]]
    no_eos = setup_method(base, embed_eos=False)[2][0]  # the official <s> text
    assert no_eos["evidence_ids"] == [emb]


def test_official_special_tokens_are_added_in_the_official_order(base):
    _, path, _ = base
    tok = load_tokenizer(path, "decoder-only")
    n = len(tok)
    tok.pad_token = tok.eos_token  # as load_tokenizer leaves Llama-2's (it has no pad token)
    method = get_method("cosup", {}, tok, "decoder-only")
    # run_train.py 81-85: <PAD>, then [Cs], [Ce], then [Ret]
    assert tok.convert_tokens_to_ids(["<PAD>", "[Cs]", "[Ce]", "[Ret]"]) == [n, n + 1, n + 2,
                                                                              n + 3]
    assert tok.pad_token == "<PAD>" and method.ret_id == n + 3
    own = load_tokenizer(path, "decoder-only")  # a tokenizer with its own pad keeps it
    get_method("cosup", {}, own, "decoder-only")
    assert own.convert_tokens_to_ids(["[Cs]", "[Ce]", "[Ret]"]) == [n, n + 1, n + 2]
    assert own.pad_token == "<pad>"


def test_passage_text_in_the_data_is_not_inserted_again(base):
    """The official data may hold the passage after its placeholder: it is used once."""
    method, _, _, _ = setup_method(base)
    tok = method.tokenizer
    passages = {p["id"]: p for p in PASSAGES}
    inline = {"id": "x", "source": "Where was Ana Rive born?",
              "output": "[Ret]Ana Rive :: Ana Rive was born in Tolo in 1950.[Cs]Tolo[Ce]",
              "evidence": ["P0"]}
    absent = {**inline, "output": "[Ret][Cs]Tolo[Ce]"}
    a = method.encode_instance(inline, passages, TRAINING, {})
    b = method.encode_instance(absent, passages, TRAINING, {})
    text = tok.decode(a["input_ids"])
    assert text.count("was born in Tolo in 1950") == 1
    assert tok.decode(b["input_ids"]).count("was born in Tolo in 1950") == 1
    assert a["evidence"] == b["evidence"] == ["P0"]
    ret = a["input_ids"].index(method.ret_id)
    passage_labels = a["labels"][ret + 1: a["input_ids"].index(method.cs_id) + 1]
    assert set(passage_labels) == {IGNORE}  # given, masked, inline or inserted


def test_official_records_with_and_without_the_passage_hold_it_once(base):
    """Fixture in the official format (tests/data/cosup_train/inline.train.pickle): a passage
    already after its placeholder is not inserted again; an absent one is inserted once."""
    import json
    import pickle
    from pathlib import Path

    from repro.data.cosup_format import convert_official, instance_from_record

    data = Path(__file__).parent / "data" / "cosup_train"
    table = pickle.loads((data / "inline.train.pickle").read_bytes())
    rows = [dict(zip(table, values, strict=True)) for values in zip(*table.values(),
                                                                     strict=True)]
    ids2text = json.loads((data / "ids2text.json").read_text(encoding="utf-8"))
    records, passages, stats = convert_official(rows, ids2text)
    assert (stats["passages_inline"], stats["passages_to_insert"]) == (1, 1)
    method, _, _, _ = setup_method(base)
    by_id = {p["id"]: p for p in passages}
    for rec in records:
        inst = instance_from_record(rec, by_id)
        f = method.encode_instance(inst, by_id, TRAINING, {})
        ids, passage = f["input_ids"], method.insert_ids(by_id[inst["evidence"][0]])
        hits = [i for i in range(len(ids)) if ids[i: i + len(passage)] == passage]
        assert len(hits) == 1, rec["id"]
        assert ids[hits[0] - 1] == method.ret_id and ids[hits[0] + len(passage)] == method.cs_id


def test_total_length_cut_keeps_the_passages_of_the_retrieval_points_left(base):
    method, _, _, _ = setup_method(base)
    passages = {p["id"]: p for p in PASSAGES}
    inst = {"id": "x", "source": "Where was Ana Rive born?",
            "output": "[Ret][Cs]Tolo[Ce] [Ret][Cs]baker[Ce]", "evidence": ["P0", "P2"]}
    full = method.encode_instance(inst, passages, TRAINING, {})
    cut = len(full["input_ids"]) - 3  # cuts inside the second span: both [Ret] stay
    f = method.encode_instance(inst, passages, {**TRAINING, "max_total_len": cut}, {})
    assert len(f["input_ids"]) == cut and f["evidence"] == ["P0", "P2"]
    second = [i for i, t in enumerate(full["input_ids"]) if t == method.ret_id][1]
    f = method.encode_instance(inst, passages, {**TRAINING, "max_total_len": second}, {})
    assert f["input_ids"] == full["input_ids"][:second] and f["evidence"] == ["P0"]
    assert len(f["evidence_ids"]) == 1


def test_collator_deduplicates_passages(base):
    _, _, feats, batch = setup_method(base)
    assert batch["passage_input_ids"].shape[0] == 3  # P0 twice in the batch, embedded once
    assert batch["positives"].tolist() == [0, 1, 2, 0]
    assert batch["passage_keys"].tolist() == [cs.passage_key(p) for p in ("P0", "P1", "P2")]


@pytest.mark.parametrize("left", [False, True])
def test_query_and_sequence_embeddings_at_the_right_positions(base, left):
    method, model, feats, _ = setup_method(base)
    model.eval()
    tok = method.tokenizer
    ids, mask = pad_batch([f["input_ids"] for f in feats], tok.pad_token_id, left=left)
    with torch.no_grad():
        q = model.queries(hidden_states(model.gen.base_model, ids, mask), ids)
        for i, f in enumerate(feats):
            j = f["input_ids"].index(method.ret_id)
            alone = torch.tensor([f["input_ids"][: j + 1]])
            want = hidden_states(model.gen.base_model, alone, torch.ones_like(alone))[0, -1]
            torch.testing.assert_close(q[i], want, rtol=1e-4, atol=1e-5)
        rows = [f["evidence_ids"][0] for f in feats]
        pids, pmask = pad_batch(rows, method.embseq_tokenizer.pad_token_id, left=left)
        seq = model.sequences(pids, pmask)
        for i, r in enumerate(rows):
            alone = torch.tensor([r])
            want = hidden_states(model.embseq, alone, torch.ones_like(alone))[0, -1]
            torch.testing.assert_close(seq[i], want, rtol=1e-4, atol=1e-5)


def test_forward_losses_match_their_parts(base):
    method, model, _, batch = setup_method(base, nsp_weight=0.5)
    model.eval()
    loss, logs = method.loss(model, batch)
    with torch.no_grad():
        h = hidden_states(model.gen.base_model, batch["input_ids"], batch["attention_mask"])
        q = model.queries(h, batch["input_ids"])
        p = model.sequences(batch["passage_input_ids"], batch["passage_attention_mask"])
        nsp = cs.nsp_loss(q, p, batch["positives"])
        logits = model.gen(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    ntp = torch.nn.functional.cross_entropy(logits[:, :-1][keep], labels[keep])
    assert logs["nsp_loss"] == pytest.approx(nsp.item(), abs=1e-5)
    assert logs["ntp_loss"] == pytest.approx(ntp.item(), abs=1e-5)
    assert loss.item() == pytest.approx(ntp.item() + 0.5 * nsp.item(), abs=1e-5)


# --- gradient flow ---------------------------------------------------------------------------


def grads(module):
    return {n: p.grad for n, p in module.named_parameters()}


def nonzero(g):
    return g is not None and g.abs().sum().item() > 0


def test_gradients_ntp_nsp_reach_both_models(base):
    method, model, _, batch = setup_method(base)
    loss, _ = method.loss(model, batch)
    loss.backward()
    assert all(nonzero(g) for g in grads(model.embseq).values())
    gen = grads(model.gen)
    assert nonzero(gen["model.layers.0.self_attn.q_proj.weight"])
    assert nonzero(gen["model.embed_tokens.weight"])
    # NSP alone reaches Gen's body through the [Ret] states, not the LM head
    model.zero_grad()
    out = model(**batch)
    out["nsp_loss"].backward()
    assert nonzero(model.gen.model.layers[0].mlp.down_proj.weight.grad)
    assert nonzero(model.embseq.layers[0].mlp.down_proj.weight.grad)


def test_gradients_ntp_only_train_gen_alone(base):
    method, model, _, batch = setup_method(base, "ntp")
    loss, logs = method.loss(model, batch)
    assert set(logs) == {"ntp_loss"} and loss.item() == pytest.approx(logs["ntp_loss"])
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in model.embseq.parameters())
    assert all(nonzero(g) for n, g in grads(model.gen).items() if "layers" in n)


def test_gradients_nsp_only(base):
    method, model, _, batch = setup_method(base, "nsp")
    loss, logs = method.loss(model, batch)
    assert set(logs) == {"nsp_loss", "nsp_acc"} and loss.item() == pytest.approx(logs["nsp_loss"])
    loss.backward()
    assert nonzero(model.embseq.layers[0].self_attn.q_proj.weight.grad)
    assert nonzero(model.gen.model.layers[0].self_attn.q_proj.weight.grad)


def test_projection_maps_gen_queries_into_a_wider_embseq(base, tmp_path):
    _, _, wide = base
    method, model, _, batch = setup_method(base, embseq_path=wide)
    assert model.projection.weight.shape == (24, 16)
    loss, _ = method.loss(model, batch)
    loss.backward()
    assert nonzero(model.projection.weight.grad)
    method.save(SimpleNamespace(args=SimpleNamespace(should_save=True)), tmp_path / "model")
    assert (tmp_path / "model" / cs.PROJECTION_FILE).is_file()
    emb = load_base_model(str(tmp_path / "model" / "embseq"))
    assert emb.config.hidden_size == 24
    for k, v in model.embseq.state_dict().items():
        torch.testing.assert_close(emb.state_dict()[k], v)


def test_saved_layout_loads_gen_and_embseq_separately(base, tmp_path):
    method, model, _, _ = setup_method(base)
    out = tmp_path / "model"
    method.save(SimpleNamespace(args=SimpleNamespace(should_save=True)), out)
    gen = load_model(str(out), "decoder-only")
    tok = load_tokenizer(str(out), "decoder-only")
    assert tok.convert_tokens_to_ids("[Ret]") == method.ret_id
    assert gen.config.vocab_size == len(tok)
    torch.testing.assert_close(gen.lm_head.weight, model.gen.lm_head.weight)
    assert (out / "embseq" / "sequence_encoder.json").is_file()
    assert not (out / cs.PROJECTION_FILE).exists()
    state = model.state_dict()  # tied tensors stored once (safetensors refuses shared storage)
    assert "gen.model.embed_tokens.weight" in state and "gen.lm_head.weight" not in state


# --- decoding --------------------------------------------------------------------------------


def decode_setup(base, monkeypatch=None, **opts):
    method, model, _, _ = setup_method(base, **opts)
    gen = model.gen.eval()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 16)).astype("f4")
    extra = [{"id": f"P{i}", "title": "Bo Dele", "text": "Bo Dele works at Kesa Works."}
             for i in range(3, 40)]
    method.index = PassageIndex(vectors, [f"P{i}" for i in range(40)], build_index(vectors))
    method.passages = {p["id"]: p for p in PASSAGES + extra}
    recs = [RECORDS[0], RECORDS[2]]
    feats = [encode_record(r, method.tokenizer, "decoder-only", 32, 1, "\n=>") for r in recs]
    batch = prompt_batch(feats, method.tokenizer.pad_token_id, "decoder-only")
    return method, gen, recs, feats, batch


class Scripted:
    """Replaces gen.generate: each call appends the next scripted tokens of each row."""

    def __init__(self, method, scripts):
        self.method, self.scripts, self.calls = method, scripts, []

    def __call__(self, input_ids, attention_mask, **kw):
        if "generation_config" in kw:  # the settings of the call, flattened
            kw = {**kw.pop("generation_config").to_dict(), **kw}
        self.calls.append((input_ids.clone(), attention_mask.clone(), kw))
        rows = []
        for ids, m in zip(input_ids, attention_mask, strict=True):
            seq = ids[m.bool()].tolist()
            key = next(k for k in self.scripts if seq[: len(k)] == list(k))
            rows.append(self.scripts[key].pop(0))
        width = max(len(r) for r in rows)
        pad = self.method.tokenizer.pad_token_id
        new = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new], dim=1)


def test_decoding_inserts_the_retrieved_passage_and_continues(base, monkeypatch):
    method, gen, recs, feats, batch = decode_setup(base)
    tok = method.tokenizer
    a, b = tok("Tolo", add_special_tokens=False)["input_ids"], tok(
        "baker", add_special_tokens=False)["input_ids"]
    eos, ret, cs, ce = tok.eos_token_id, method.ret_id, method.cs_id, method.ce_id
    p0, p2 = feats[0]["prompt_ids"], feats[1]["prompt_ids"]
    script = Scripted(method, {tuple(p0): [[a[0], ret], a[1:] + [ce], [eos]],
                               tuple(p2): [b + [eos]]})
    monkeypatch.setattr(gen, "generate", script)
    cands = {"a": None, "c": ["P1", "P2"]}
    recs = [{**r, "candidates": cands[r["id"]]} for r in recs]
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 20})
    # the query is Gen's state at [Ret] given everything before it
    seq = torch.tensor([p0 + [a[0], ret]])
    h = hidden_states(gen.base_model, seq, torch.ones_like(seq))[0].detach().numpy()
    best, before = (method.index.ids[int(np.argmax(method.index.vectors @ h[j]))]
                    for j in (-1, -2))
    assert best != before  # the setup tells the [Ret] state from its neighbour's
    assert out[0]["retrieved"] == [best] and out[1]["retrieved"] == []
    second = script.calls[1][0][script.calls[1][1].bool()].tolist()
    passage = method.passages[best]
    # exactly the passage, then [Cs]: the official `[Ret] title :: text [Cs]`
    assert second == p0 + [a[0], ret] + method.insert_ids(passage) + [cs]
    assert out[0]["hypothesis"] == tok.decode(a, skip_special_tokens=True)
    assert out[1]["hypothesis"] == "baker" and out[1]["spans"] == []
    raw = out[0]["raw_output"]
    assert raw.count("[Ret]") == raw.count("[Cs]") == raw.count("[Ce]") == 1
    assert f"{passage['title']} :: {passage['text']}" in raw
    assert out[0]["spans"] == [{"text": raw[raw.index("[Cs]") + 4: raw.index("[Ce]")].strip(),
                                "passage_id": best}]
    assert set(out[0]) == {"hypothesis", "retrieved", "raw_output", "spans", "decode_seconds"}
    first, inside, after = (c[2] for c in script.calls[:3])
    # [Cs] is never generated; [Ce] only inside a span, where it stops the round
    assert first["eos_token_id"] == [eos, ret] and first["bad_words_ids"] == [[cs], [ce]]
    assert inside["eos_token_id"] == [eos, ret, ce] and inside["bad_words_ids"] == [[cs]]
    assert after["bad_words_ids"] == [[cs], [ce]]
    assert first["do_sample"] is False and first["num_beams"] == 1  # every setting explicit


def test_decoding_forces_ce_before_a_new_ret_and_at_the_end(base, monkeypatch):
    method, gen, recs, feats, batch = decode_setup(base, max_retrievals=None)
    tok = method.tokenizer
    x = tok("Tolo", add_special_tokens=False)["input_ids"][0]
    eos, ret, cs, ce = tok.eos_token_id, method.ret_id, method.cs_id, method.ce_id
    p0, p2 = feats[0]["prompt_ids"], feats[1]["prompt_ids"]
    # span 1 is left open by a new [Ret]; span 2 by </s>
    script = Scripted(method, {tuple(p0): [[ret], [x, ret], [x, eos]], tuple(p2): [[eos]]})
    monkeypatch.setattr(gen, "generate", script)
    recs = [{**r, "candidates": ["P1", "P2"]} for r in recs]
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 20})
    r0 = out[0]
    assert len(r0["retrieved"]) == 2
    third = script.calls[2][0][script.calls[2][1].bool()].tolist()
    first_passage = method.insert_ids(method.passages[r0["retrieved"][0]])
    assert third[len(p0):len(p0) + len(first_passage) + 5] == \
        [ret] + first_passage + [cs, x, ce, ret]  # [Ce] forced before the second [Ret]
    raw = r0["raw_output"]
    assert raw.count("[Ce]") == 2 and raw.endswith("[Ce]")  # forced at the end
    assert [s["passage_id"] for s in r0["spans"]] == r0["retrieved"]
    assert r0["hypothesis"] == tok.decode([x, x], skip_special_tokens=True).strip()


def test_decoding_restricts_to_candidates_and_caps_retrievals(base, monkeypatch):
    method, gen, recs, feats, batch = decode_setup(base, max_retrievals=1)
    tok = method.tokenizer
    eos, ret, ce = tok.eos_token_id, method.ret_id, method.ce_id
    x = tok("Tolo", add_special_tokens=False)["input_ids"][0]
    p0, p2 = feats[0]["prompt_ids"], feats[1]["prompt_ids"]
    script = Scripted(method, {tuple(p0): [[ret], [x, eos]], tuple(p2): [[ret], [x, eos]]})
    monkeypatch.setattr(gen, "generate", script)
    recs = [{**r, "candidates": ["P1"]} for r in recs]
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 20})
    assert [o["retrieved"] for o in out] == [["P1"], ["P1"]]
    kw = script.calls[1][2]  # after one retrieval: [Ret] is banned and no longer a stop token
    assert kw["eos_token_id"] == [eos, ce] and [ret] in kw["bad_words_ids"]


def test_decoding_budgets(base, monkeypatch):
    method, gen, recs, feats, batch = decode_setup(base, retrieve_first=True)
    x = method.tokenizer("Tolo", add_special_tokens=False)["input_ids"][0]
    p0, p2 = feats[0]["prompt_ids"], feats[1]["prompt_ids"]
    script = Scripted(method, {tuple(p0): [[x] * 3], tuple(p2): [[x] * 3]})
    monkeypatch.setattr(gen, "generate", script)
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 3})
    assert all(len(o["retrieved"]) == 1 for o in out)  # forced [Ret] after the prompt
    assert script.calls[0][2]["max_new_tokens"] == 2  # [Ret] counted, the passage is not
    # the total budget counts the prompt and the inserted passages too (official max_length)
    method, gen, recs, feats, batch = decode_setup(base, retrieve_first=True)
    script = Scripted(method, {tuple(p0): [[x] * 9], tuple(p2): [[x] * 9]})
    monkeypatch.setattr(gen, "generate", script)
    longest = max(len(p) for p in (p0, p2))
    cap = longest + 1 + max(len(method.insert_ids(p)) for p in method.passages.values()) + 1 + 4
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 50, "max_total_len": cap})
    ids, mask, kw = script.calls[0]
    rows = [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]
    assert all(r[-1] == method.cs_id for r in rows)  # prompt [Ret] passage [Cs]
    assert kw["max_new_tokens"] == max(cap - len(r) for r in rows) > 0
    assert all(len(o["raw_output"]) for o in out)
    # a passage that does not fit is retrieved (recorded, as official) but not inserted
    method, gen, recs, feats, batch = decode_setup(base, retrieve_first=True)
    monkeypatch.setattr(gen, "generate", Scripted(method, {}))
    out = method.decode_records(gen, recs, batch, {"max_new_tokens": 50,
                                                   "max_total_len": longest + 3})
    assert all(len(o["retrieved"]) == 1 and o["raw_output"] == "[Ret]" for o in out)


def test_generation_settings_are_explicit(base, monkeypatch):
    """Each round's generate call spells out every setting: greedy by default, the official
    sampling when asked (T 0.7, top-p 0.9, top-k 50), always one beam."""
    method, gen, recs, feats, batch = decode_setup(base)
    eos = method.tokenizer.eos_token_id
    for decoding, expected in (
            ({"max_new_tokens": 4, "num_beams": 4}, {"do_sample": False, "num_beams": 1}),
            ({"max_new_tokens": 4, "do_sample": True, "temperature": 0.7, "top_p": 0.9,
              "top_k": 50}, {"do_sample": True, "num_beams": 1, "temperature": 0.7,
                             "top_p": 0.9, "top_k": 50, "repetition_penalty": 1.0})):
        script = Scripted(method, {tuple(f["prompt_ids"]): [[eos]] for f in feats})
        monkeypatch.setattr(gen, "generate", script)
        method.decode_records(gen, recs, batch, decoding)
        kw = script.calls[0][2]
        assert {k: kw[k] for k in expected} == expected


def test_a_sampling_generation_config_in_the_checkpoint_does_not_apply(base):
    """Llama-2 checkpoints ship do_sample: true; greedy decoding stays greedy, sampling is
    seeded."""
    method, gen, recs, feats, batch = decode_setup(base, retrieve_first=True)
    gen.generation_config.do_sample = True
    gen.generation_config.temperature = 50.0
    gen.generation_config.top_k = 0
    runs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        runs.append(method.decode_records(gen, recs, batch, {"max_new_tokens": 8}))
    assert [o["hypothesis"] for o in runs[0]] == [o["hypothesis"] for o in runs[1]]
    sampled = []
    for seed in (3, 3):
        torch.manual_seed(seed)
        sampled.append(method.decode_records(gen, recs, batch, {
            "max_new_tokens": 8, "do_sample": True, "temperature": 5.0, "top_p": 1.0}))
    assert [o["raw_output"] for o in sampled[0]] == [o["raw_output"] for o in sampled[1]]


def test_real_batched_decoding_equals_one_at_a_time(base):
    method, gen, recs, feats, batch = decode_setup(base, retrieve_first=True,
                                                   max_retrievals=2)
    both = method.decode_records(gen, recs, batch, {"max_new_tokens": 6})
    for i, r in enumerate(recs):
        one = prompt_batch([feats[i]], method.tokenizer.pad_token_id, "decoder-only")
        alone = method.decode_records(gen, [r], one, {"max_new_tokens": 6})[0]
        assert alone["hypothesis"] == both[i]["hypothesis"]
        assert alone["retrieved"] == both[i]["retrieved"]
        assert 1 <= len(alone["retrieved"]) <= 2
