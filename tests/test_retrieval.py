"""The nonparametric space: sequence-embedding positions under left/right padding, faiss search
against brute force, sharded against unsharded builds, per-question candidate search."""

import numpy as np
import pytest
import torch

from repro.io import DataError, write_jsonl
from repro.models import build_tiny, load_base_model, load_tokenizer
from repro.retrieval import (
    EncoderSettings,
    PassageIndex,
    build_index,
    embed_passages,
    embed_shard,
    hidden_states,
    merge_shards,
    pad_batch,
    passage_ids,
    sequence_embedding,
    shard_range,
)

TEXTS = ["Ana Rive was born in Tolo in 1950.", "Bo Dele works as a baker at Mira Foods.",
         "Kesa Works was founded in 1901 by Ana Rive.", "Mira Foods makes tea and soap."] * 10
TINY = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1}
GPT2 = {"n_embd": 16, "n_layer": 1, "n_head": 2}  # absolute positions: padding must not shift


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("embseq")
    m = build_tiny("m", {"family": "llama", "config": TINY, "tokenizer": {"vocab_size": 80}},
                   TEXTS, root)
    EncoderSettings(max_len=24).save(root)
    return m["path"]


@pytest.fixture(scope="module")
def encoder(encoder_dir):
    return load_base_model(encoder_dir).eval(), load_tokenizer(encoder_dir, "decoder-only")


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def any_encoder(request, encoder, tmp_path_factory):
    if request.param == "llama":
        return encoder
    m = build_tiny("g", {"family": "gpt2", "config": GPT2, "tokenizer": {"vocab_size": 80}},
                   TEXTS, tmp_path_factory.mktemp("gpt2"))
    return load_base_model(m["path"]).eval(), load_tokenizer(m["path"], "decoder-only")


def passages(n):
    words = "Ana Bo Kesa Mira Tolo tea soap baker born works founded makes in at by".split()
    rng = np.random.default_rng(0)
    return [{"id": f"P{i:03d}", "title": f"T{i}",
             "text": " ".join(rng.choice(words, size=int(rng.integers(2, 12))))}
            for i in range(n)]


def alone(model, ids):
    """Last hidden state of one unpadded sequence."""
    t = torch.tensor([ids])
    return hidden_states(model, t, torch.ones_like(t))[0, -1]


@pytest.mark.parametrize("left", [False, True])
def test_last_token_embedding_equals_unpadded_under_either_padding(any_encoder, left):
    model, tok = any_encoder
    rows = [passage_ids(tok, p, EncoderSettings(max_len=24)) for p in passages(5)]
    assert len({len(r) for r in rows}) > 1 and all(r[-1] == tok.eos_token_id for r in rows)
    ids, mask = pad_batch(rows, tok.pad_token_id, left=left)
    with torch.no_grad():
        emb = sequence_embedding(hidden_states(model, ids, mask), mask, "last_token")
        for i, r in enumerate(rows):
            torch.testing.assert_close(emb[i], alone(model, r), rtol=1e-4, atol=1e-5)


def test_official_pad_reads_the_last_batch_position(encoder):
    model, tok = encoder
    rows = [passage_ids(tok, p, EncoderSettings(max_len=24)) for p in passages(5)]
    ids, mask = pad_batch(rows, tok.pad_token_id)
    longest = max(range(len(rows)), key=lambda i: len(rows[i]))
    shortest = min(range(len(rows)), key=lambda i: len(rows[i]))
    with torch.no_grad():
        h = hidden_states(model, ids, mask)
        off = sequence_embedding(h, mask, "official_pad")
        last = sequence_embedding(h, mask, "last_token")
    torch.testing.assert_close(off, h[:, -1])
    torch.testing.assert_close(off[longest], last[longest])
    assert not torch.allclose(off[shortest], last[shortest])  # a pad position's state


def test_sequence_embedding_rejects_unknown_position():
    with pytest.raises(ValueError, match="embed_position"):
        sequence_embedding(torch.zeros(1, 2, 3), torch.ones(1, 2), "mean")


def test_embed_passages_order_independent_of_length_sorting(encoder):
    model, tok = encoder
    ps = passages(9)
    settings = EncoderSettings(max_len=24)
    batched = embed_passages(model, tok, ps, settings, batch_size=4)
    single = np.stack([embed_passages(model, tok, [p], settings)[0] for p in ps])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n,k", [(10, 3), (7, 7), (5, 1), (3, 4)])
def test_shard_ranges_cover_each_row_once(n, k):
    rows = [i for s in range(k) for i in shard_range(n, s, k)]
    assert rows == list(range(n))


def test_flat_index_equals_brute_force():
    rng = np.random.default_rng(1)
    x, q = rng.normal(size=(500, 24)).astype("f4"), rng.normal(size=(20, 24)).astype("f4")
    idx = PassageIndex(x, [f"P{i}" for i in range(500)], build_index(x, "flat"))
    got = idx.search(q, 10)
    scores = q @ x.T
    for row, s in zip(got, scores, strict=True):
        top = np.argsort(-s)[:10]
        assert [pid for pid, _ in row] == [f"P{i}" for i in top]
        np.testing.assert_allclose([v for _, v in row], s[top], rtol=1e-5)


def test_approximate_indexes_agree_with_exact_when_exhaustive():
    rng = np.random.default_rng(2)
    x, q = rng.normal(size=(2000, 16)).astype("f4"), rng.normal(size=(50, 16)).astype("f4")
    exact = np.argsort(-(q @ x.T), axis=1)[:, 0]
    ivf = build_index(x, "ivf", nlist=20, nprobe=20)  # every list probed: exact
    assert (ivf.search(q, 1)[1][:, 0] == exact).all()
    hnsw = build_index(x, "hnsw", ef_search=256)
    assert (hnsw.search(q, 1)[1][:, 0] == exact).mean() >= 0.95
    with pytest.raises(ValueError, match="index kind"):
        build_index(x, "lsh")


def test_candidate_search_is_exact_within_candidates():
    rng = np.random.default_rng(3)
    x, q = rng.normal(size=(50, 8)).astype("f4"), rng.normal(size=(3, 8)).astype("f4")
    ids = [f"P{i}" for i in range(50)]
    idx = PassageIndex(x, ids, build_index(x))
    cands = [["P3", "P7", "P11"], None, ["P40"]]
    got = idx.search(q, 2, cands)
    s0 = q[0] @ x[[3, 7, 11]].T
    assert [p for p, _ in got[0]] == [["P3", "P7", "P11"][j] for j in np.argsort(-s0)[:2]]
    assert got[1][0][0] == ids[int(np.argmax(x @ q[1]))]
    assert [p for p, _ in got[2]] == ["P40"]
    with pytest.raises(DataError, match="not in the index"):
        idx.search(q[:1], 1, [["nope"]])


def test_candidate_ties_keep_candidate_order():
    x = np.ones((4, 2), dtype="f4")
    idx = PassageIndex(x, ["a", "b", "c", "d"], build_index(x))
    assert [p for p, _ in idx.search(np.ones((1, 2), "f4"), 4, [["c", "a", "d"]])[0]] == \
        ["c", "a", "d"]


def test_sharded_build_equals_unsharded(encoder_dir, tmp_path):
    ps = passages(23)
    write_jsonl(tmp_path / "passages.jsonl", ps)
    for k in range(3):
        embed_shard(encoder_dir, tmp_path / "passages.jsonl", k, 3, tmp_path / f"s3/{k}",
                    batch_size=4)
    embed_shard(encoder_dir, tmp_path / "passages.jsonl", 0, 1, tmp_path / "s1/0",
                batch_size=16)
    a = merge_shards([tmp_path / f"s3/{k}" for k in range(3)], tmp_path / "idx3")
    b = merge_shards([tmp_path / "s1/0"], tmp_path / "idx1")
    assert a == b == {"kind": "flat", "dim": 16, "n": 23, "params": {}}
    i3, i1 = PassageIndex.load(tmp_path / "idx3"), PassageIndex.load(tmp_path / "idx1")
    assert i3.ids == i1.ids == [p["id"] for p in ps]
    np.testing.assert_allclose(i3.vectors, i1.vectors, rtol=1e-4, atol=1e-5)
    q = np.random.default_rng(4).normal(size=(6, 16)).astype("f4")
    assert [[p for p, _ in r] for r in i3.search(q, 3)] == \
        [[p for p, _ in r] for r in i1.search(q, 3)]
    with pytest.raises(DataError, match="duplicate passage ids"):
        merge_shards([tmp_path / "s1/0", tmp_path / "s3/1"], tmp_path / "bad")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty.jsonl: no passages to index.*index.from"):
        embed_shard(encoder_dir, tmp_path / "empty.jsonl", 0, 1, tmp_path / "e/0")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="index.faiss|embeddings.npy"):
        PassageIndex.load(tmp_path)
    with pytest.raises(DataError, match="sequence_encoder.json"):
        EncoderSettings.load(tmp_path)
    with pytest.raises(DataError, match="shard files missing"):
        merge_shards([tmp_path / "nope"], tmp_path / "out")
