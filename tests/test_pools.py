"""Per-question candidate pools: the corpora in their real schemas, Contriever's mean pooling,
exact top-k against numpy brute force (sharded, unsharded, from precomputed embeddings), and
the candidates written into the test split with their bad-input errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import build_bert

from repro import pool_jobs as pj
from repro import pools as rp
from repro.contriever import RetrieverSettings, encode, load_retriever, mean_pool, passage_text
from repro.corpus import (
    chunk_knowledge_source,
    chunk_page,
    iter_psgs_w100,
    load_precomputed,
    passages_by_id,
)
from repro.data.filters import filter_dataset
from repro.io import DataError, read_jsonl, write_jsonl

DATA = Path(__file__).parent / "data" / "pools"
PSGS = DATA / "psgs_w100.tsv"
KILT_KS = DATA / "kilt_knowledgesource.json"
QUESTIONS = ["Who painted the Mona Lisa?", "What is the capital of Russia?",
             "When was the Eiffel Tower built?", "Who wrote The Firm?",
             "who first climbed mount everest", "What did Marie Curie research?"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    texts = [f"{p['title']} {p['text']}" for p in iter_psgs_w100(PSGS)] + QUESTIONS
    texts += [p["text"] for p in chunk_knowledge_source_rows()]
    return build_bert(tmp_path_factory.mktemp("bert"), texts)


def chunk_knowledge_source_rows() -> list[dict]:
    return [c for line in KILT_KS.read_text(encoding="utf-8").splitlines()
            for c in chunk_page(json.loads(line), 20)]


def spec_for(encoder: Path, k: int = 5, **extra) -> dict:
    return {"retriever": {"path": str(encoder), "batch_size": 4, "query_batch_size": 3},
            "embeddings": {}, "k": k, **extra}


def raw_test(tmp_path: Path) -> Path:
    path = tmp_path / "raw" / "test.jsonl"
    write_jsonl(path, [{"id": f"q{i}", "source": q, "target": "x", "answers": ["x"],
                        "provenance": []} for i, q in enumerate(QUESTIONS)])
    return path


def test_queries_skip_records_the_filter_drops(tmp_path):
    """A raw record without a question (e.g. an unjoined TriviaQA id) or with a repeated id
    gets no pool: the filter drops it as malformed or repeated."""
    path = tmp_path / "test.jsonl"
    write_jsonl(path, [{"id": "a", "source": "q1"}, {"id": "b"}, {"id": "a", "source": "q2"},
                       {"id": "c", "source": "q3"}])
    records, left_out = rp._queries(path)
    assert [r["source"] for r in records] == ["q1", "q3"] and left_out == 2
    write_jsonl(path, [{"id": "b"}])
    with pytest.raises(DataError, match="no test record with a str id and source"):
        rp._queries(path)


def build(tmp_path: Path, spec: dict, shards: int, name: str) -> Path:
    prefixes = [tmp_path / name / "emb" / f"{k}-of-{shards}" for k in range(shards)]
    for k, prefix in enumerate(prefixes):
        rp.embed_shard(spec, str(PSGS), "psgs_w100", k, shards, prefix)
    out = tmp_path / name / "pool"
    rp.search_pools(spec, raw_test(tmp_path), prefixes, str(PSGS), "psgs_w100", out)
    return out


# --- corpora -------------------------------------------------------------------------------

def test_psgs_w100_is_read_with_csv_quoting_as_contriever_does():
    rows = list(iter_psgs_w100(PSGS))
    assert len(rows) == 24 and rows[0]["id"] == "1" and rows[0]["title"] == "Aaron"
    # the file's "( or ; ""Ahärôn"")" is one quote character after unquoting
    assert rows[0]["text"].startswith('Aaron Aaron ( or ; "Ahärôn") is a prophet')
    assert not rows[0]["text"].endswith('"')


def test_psgs_w100_bad_header_and_row_name_the_line(tmp_path):
    bad = tmp_path / "psgs.tsv"
    bad.write_text("id\ttitle\ttext\n1\tx\ty\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"psgs\.tsv, line 1: header"):
        list(iter_psgs_w100(bad))
    bad.write_text("id\ttext\ttitle\n1\tx\ty\n2\tonly two\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"psgs\.tsv, line 3: 2 fields"):
        list(iter_psgs_w100(bad))


def test_kilt_page_chunks_skip_title_and_section_headings():
    page = json.loads(KILT_KS.read_text(encoding="utf-8").splitlines()[0])
    chunks = chunk_page(page, words=10)
    # hand count: paragraph 1 has 31 words, paragraph 3 (after Section::::History.) 20,
    # paragraph 5 13: 64 words -> blocks of 10, 10, 10, 10, 10, 10, 4
    body = (page["text"][1] + page["text"][3] + page["text"][5]).split()
    assert len(body) == 64
    assert [len(c["text"].split()) for c in chunks] == [10] * 6 + [4]
    assert chunks[0] == {"id": "290_0", "wikipedia_id": "290", "title": "A",
                         "text": "A or a is the first letter and the first"}
    # block 3 runs on across the paragraph and the skipped heading: "worldwide." then "The"
    assert chunks[3]["text"].split()[:2] == ["worldwide.", "The"]
    assert all("Section::::" not in c["text"] for c in chunks)


def test_knowledge_source_file_chunks_and_bad_line(tmp_path):
    stats = chunk_knowledge_source(KILT_KS, tmp_path / "c.jsonl", words=20)
    rows = read_jsonl(tmp_path / "c.jsonl")
    assert stats == {"pages": 3, "passages": len(rows), "words": 20}
    assert rows == chunk_knowledge_source_rows()
    bad = tmp_path / "ks.json"
    bad.write_text('{"wikipedia_id": "1", "text": ["t"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"ks\.json, line 1: not a KILT knowledge-source page"):
        chunk_knowledge_source(bad, tmp_path / "d.jsonl")


def test_precomputed_reader_loads_arrays_and_refuses_other_objects(tmp_path):
    path = tmp_path / "passages_00"
    arr = np.arange(6, dtype=np.float16).reshape(3, 2)
    with open(path, "wb") as f:
        pickle.dump((["1", "2", "3"], arr), f)
    ids, vectors = load_precomputed(path)
    assert ids == ["1", "2", "3"] and vectors.dtype == np.float16
    np.testing.assert_array_equal(vectors, arr)
    with open(path, "wb") as f:
        pickle.dump((["1"], Path("x")), f)
    with pytest.raises(DataError, match="refusing to load pathlib"):
        load_precomputed(path)


# --- the encoder ---------------------------------------------------------------------------

def test_mean_pool_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(h, mask).tolist() == [[2.0, 3.0]]  # ((1+3)/2, (2+4)/2); pad ignored


def test_encode_is_contrievers_mean_pooled_bert(encoder):
    s = RetrieverSettings(path=str(encoder))
    model, tok = load_retriever(s)
    p = {"id": "5", "title": "Mona Lisa", "text": "The painting is in Paris."}
    assert passage_text(p, s) == "Mona Lisa The painting is in Paris."  # title + " " + text
    texts = [passage_text(p, s), "Who painted it?", "a much longer text " * 5]
    got = encode(model, tok, texts, batch_size=2)
    for text, vec in zip(texts, got, strict=True):
        batch = tok([text], return_tensors="pt")
        hidden = model(**batch).last_hidden_state[0].detach().numpy()
        np.testing.assert_allclose(vec, hidden.mean(axis=0), rtol=1e-5, atol=1e-6)


# --- pools against brute force -------------------------------------------------------------

def brute_force(q: np.ndarray, x: np.ndarray, ids: list[str], k: int):
    scores = q.astype(np.float64) @ x.astype(np.float64).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[ids[j] for j in row] for row in top], np.take_along_axis(scores, top, 1)


def test_pools_equal_brute_force_top_k_sharded_unsharded_and_precomputed(encoder, tmp_path):
    spec = spec_for(encoder, k=5)
    one = build(tmp_path, spec, 1, "one")
    three = build(tmp_path, spec, 3, "three")
    vectors, ids = rp.load_shard(tmp_path / "one" / "emb" / "0-of-1")
    model, tok = load_retriever(RetrieverSettings.from_dict(spec["retriever"]))
    q = encode(model, tok, QUESTIONS)
    want_ids, want_scores = brute_force(q, np.asarray(vectors), ids, 5)
    pools1 = read_jsonl(one / "candidates.jsonl")
    assert [p["id"] for p in pools1] == [f"q{i}" for i in range(len(QUESTIONS))]
    assert [p["candidates"] for p in pools1] == want_ids
    np.testing.assert_allclose([p["scores"] for p in pools1], want_scores, atol=1e-5)
    pools3 = read_jsonl(three / "candidates.jsonl")
    assert [p["candidates"] for p in pools3] == want_ids
    np.testing.assert_allclose([p["scores"] for p in pools3], want_scores, atol=1e-5)
    # the pooled passages: exactly those the pools name, as the corpus has them
    pooled = read_jsonl(one / "passages.jsonl")
    assert {p["id"] for p in pooled} == {c for row in want_ids for c in row}
    assert {p["id"]: p for p in pooled} == passages_by_id(PSGS, "psgs_w100",
                                                          {p["id"] for p in pooled})
    # Contriever's published layout: passages_00, passages_01 pickles of (ids, array)
    pre = tmp_path / "wikipedia_embeddings"
    pre.mkdir()
    for name, rows in (("passages_00", slice(0, 10)), ("passages_01", slice(10, None))):
        with open(pre / name, "wb") as f:
            pickle.dump((ids[rows], np.asarray(vectors)[rows]), f)
    from_files = build(tmp_path, {**spec, "embeddings": {"precomputed": str(pre)}}, 2, "pre")
    assert read_jsonl(from_files / "candidates.jsonl") == pools1
    with pytest.raises(DataError, match=r"2 precomputed embedding files, but pools.<p>.shards "
                                        r"is 3; set it to 2"):
        rp.embed_shard({**spec, "embeddings": {"precomputed": str(pre)}}, str(PSGS),
                       "psgs_w100", 0, 3, tmp_path / "x")


def test_exact_top_k_across_chunks_and_shards_breaks_ties_by_corpus_order():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    a = np.array([[0.5, 0.0], [2.0, 1.0], [0.5, 3.0]], dtype=np.float32)
    b = np.array([[2.0, 0.0], [0.5, 0.0], [-1.0, 5.0]], dtype=np.float32)
    scores, rows = rp.exact_top_k(q, [a, b], k=4, chunk=2)
    # query 1 scores by row: 0.5, 2, 0.5, 2, 0.5, -1 -> rows 1, 3 (tie: lower first), 0, 2
    assert rows[0].tolist() == [1, 3, 0, 2] and scores[0].tolist() == [2.0, 2.0, 0.5, 0.5]
    # query 2: 0, 1, 3, 0, 0, 5 -> rows 5, 2, 1, then the tie 0 < 3 < 4 keeps row 0
    assert rows[1].tolist() == [5, 2, 1, 0]


# --- pools into the test split and bad input -----------------------------------------------

def prepared_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw_test(tmp_path)
    write_jsonl(raw / "train.jsonl", [])
    write_jsonl(raw / "validation.jsonl", [])
    return raw


def write_pool(pool_dir: Path, pools: list[dict], passages: list[dict]) -> None:
    write_jsonl(pool_dir / "candidates.jsonl", pools)
    write_jsonl(pool_dir / "passages.jsonl", passages)


PASSAGES = [{"id": str(i), "title": "T", "text": f"passage {i}"} for i in range(1, 4)]


def test_filter_writes_the_pools_into_the_test_split(tmp_path):
    raw = prepared_raw(tmp_path)
    pools = [{"id": f"q{i}", "candidates": ["2", "1"], "scores": [2.0, 1.0]}
             for i in range(len(QUESTIONS))]
    write_pool(tmp_path / "pool", pools, PASSAGES)
    filter_dataset(raw, tmp_path / "out", "knowledge", {"dedup": False}, True,
                   pool_dir=tmp_path / "pool")
    test = read_jsonl(tmp_path / "out" / "test.jsonl")
    assert [r["candidates"] for r in test] == [["2", "1"]] * len(QUESTIONS)
    assert read_jsonl(tmp_path / "out" / "passages.jsonl") == PASSAGES[:2]  # the used ones


@pytest.mark.parametrize("pools,passages,message", [
    ([{"id": "nope", "candidates": ["1"]}], PASSAGES,
     r"candidates\.jsonl: pools for questions not in .*raw/test\.jsonl: \['nope'\]"),
    ([{"id": "q0", "candidates": ["9"]}], PASSAGES,
     r"candidates\.jsonl, record 1 \(question 'q0'\): candidate passages not in the "
     r"dataset's passages: \['9'\]"),
    ([{"id": "q0", "candidates": []}], PASSAGES,
     r"candidates\.jsonl, record 1 \(question 'q0'\): empty pool"),
    ([{"id": "q0", "candidates": ["1"]}, {"id": "q0", "candidates": ["1"]}], PASSAGES,
     r"record 2 \(question 'q0'\): question listed twice"),
    ([{"id": "q0", "candidates": ["1"]}], PASSAGES,
     r"raw/test\.jsonl: test record 'q1' has no pool in .*candidates\.jsonl"),
])
def test_bad_candidates_files_name_the_file_and_question(tmp_path, pools, passages, message):
    raw = prepared_raw(tmp_path)
    write_pool(tmp_path / "pool", pools, passages)
    with pytest.raises(DataError, match=message):
        filter_dataset(raw, tmp_path / "out", "knowledge", {"dedup": False}, True,
                       pool_dir=tmp_path / "pool")
    assert not (tmp_path / "out" / "test.jsonl").exists()


@pytest.mark.parametrize("cands,message", [
    ([], r"test\.jsonl: record 'q0': empty pool"),
    (["1", "missing"], r"test\.jsonl: record 'q0': candidate passages not in the dataset's "
                       r"passages: \['missing'\]"),
])
def test_shipped_candidates_are_checked_too(tmp_path, cands, message):
    raw = prepared_raw(tmp_path)
    rows = read_jsonl(raw / "test.jsonl")
    rows[0]["candidates"] = cands
    write_jsonl(raw / "test.jsonl", rows)
    write_jsonl(raw / "passages.jsonl", PASSAGES)
    with pytest.raises(DataError, match=message):
        filter_dataset(raw, tmp_path / "out", "knowledge", {"dedup": False}, True)


def test_stage_params_leave_out_downloads_resources_and_k_where_unused():
    pool = {"corpus": {"format": "psgs_w100", "path": "c.tsv", "words": 100,
                       "download": [{"url": "u", "to": "c.tsv"}]},
            "retriever": {"path": "r"}, "embeddings": {"precomputed": None}, "shards": 2,
            "k": 100, "resources": {"gpu": 1, "mem_mb": 1000, "runtime": 5}}
    cfg = {"pools": {"p": pool}}
    embed = json.loads(pj.stage_params(cfg, "p", "embed"))
    assert "k" not in embed and "download" not in embed["corpus"]
    assert embed["corpus_file"] == ["c.tsv", "psgs_w100"]
    cfg2 = {"pools": {"p": {**pool, "k": 20, "resources": {"gpu": 2}}}}
    assert pj.stage_params(cfg2, "p", "embed") == pj.stage_params(cfg, "p", "embed")
    assert pj.stage_params(cfg2, "p", "search") != pj.stage_params(cfg, "p", "search")
    kilt = {"pools": {"p": {**pool, "corpus": {"format": "kilt_knowledgesource",
                                               "path": "ks.json", "words": 100}}}}
    assert pj.corpus_file(kilt, "p") == ("results/pools/p/corpus.jsonl", "jsonl")
    # no growth on a retry unless capped above the first request (as for model jobs)
    assert pj.pool_resources(cfg, "p", 2) == {"gpu": 1, "mem_mb": 1000, "runtime": 5}
    capped = {"pools": {"p": {**pool, "resources": {"gpu": 1, "mem_mb": 1000, "runtime": 5,
                                                    "max_mem_mb": 2500, "max_runtime": 8}}}}
    assert pj.pool_resources(capped, "p", 2) == {"gpu": 1, "mem_mb": 2000, "runtime": 8}
    assert pj.pool_resources(capped, "p", 3) == {"gpu": 1, "mem_mb": 2500, "runtime": 8}
    pre = {"pools": {"p": {**pool, "embeddings": {"precomputed": "d"}}}}
    assert pj.pool_resources(pre, "p", stage="embed")["gpu"] == 0
    assert pj.pool_resources(pre, "p", stage="search")["gpu"] == 1


def test_config_names_an_unknown_pool_and_a_pool_on_another_task():
    from repro.config import ConfigError, check_references

    cfg = {"experiments": [{"datasets": ["d"], "models": ["m"], "methods": {"sft": {"a": {}}}}],
           "models": {"m": {"kind": "tiny"}}, "pools": {"p": {}},
           "datasets": {"d": {"task": "knowledge", "pool": "q"}}}
    with pytest.raises(ConfigError, match=r"datasets\.d\.pool: unknown pool 'q'"):
        check_references(cfg)
    cfg["datasets"]["d"] = {"task": "translation", "pool": "p"}
    with pytest.raises(ConfigError, match=r"datasets\.d\.pool: only knowledge datasets"):
        check_references(cfg)


def test_workflow_builds_pools_and_writes_them_into_the_test_splits(encoder, tmp_path):
    """The pool stage through Snakemake on CPU: a psgs_w100 pool in two embedding jobs and a
    KILT knowledge-source pool (chunked first), each feeding one test set's filter."""
    import yaml
    from workflow_runs import snakemake

    test = tmp_path / "questions.jsonl"
    write_jsonl(test, [{"id": f"q{i}", "source": q, "target": "x", "answers": ["x"],
                        "provenance": []} for i, q in enumerate(QUESTIONS)])
    retriever = {"path": str(encoder), "batch_size": 8}
    local = {"kind": "local", "splits": {"test": {"kind": "local", "file": str(test)}}}
    cfg = {
        "datasets": {
            "kb": {"task": "knowledge", "source": {"kind": "synthetic", "generator":
                                                   "knowledge", "options": {"n_test": 4}}},
            "wiki_qs": {"task": "knowledge", "train_on": "kb", "pool": "wiki",
                        "source": local, "filter": {"dedup": False}},
            "kilt_qs": {"task": "knowledge", "train_on": "kb", "pool": "kilt",
                        "source": local, "filter": {"dedup": False}},
        },
        "pools": {
            "wiki": {"corpus": {"format": "psgs_w100", "path": str(PSGS)},
                     "retriever": retriever, "shards": 2, "k": 3},
            "kilt": {"corpus": {"format": "kilt_knowledgesource", "path": str(KILT_KS),
                                "words": 20}, "retriever": retriever, "k": 2},
        },
        "models": {"tiny": {"kind": "tiny", "family": "llama"}},
        "experiments": [{"datasets": ["kb"], "models": ["tiny"],
                         "methods": {"sft": {"default": {}}}}],
    }
    config = tmp_path / "pooled.yaml"  # no results_dir: its outputs go to results/pooled/
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    work = tmp_path / "work"
    targets = [f"results/pooled/data/knowledge/{d}/test.jsonl"
               for d in ("wiki_qs", "kilt_qs")]
    snakemake(work, *targets, config=config, timeout=600)
    for d, k, pool in (("wiki_qs", 3, "wiki"), ("kilt_qs", 2, "kilt")):
        records = read_jsonl(work / f"results/pooled/data/knowledge/{d}/test.jsonl")
        passages = {p["id"]: p for p in
                    read_jsonl(work / f"results/pooled/data/knowledge/{d}/test_passages.jsonl")}
        pools = read_jsonl(work / f"results/pooled/pools/{pool}/{d}/candidates.jsonl")
        assert [r["candidates"] for r in records] == [p["candidates"] for p in pools]
        assert all(len(r["candidates"]) == k and set(r["candidates"]) <= set(passages)
                   for r in records)
    kilt_passages = read_jsonl(work / "results/pooled/data/knowledge/kilt_qs/test_passages.jsonl")
    assert all(p["id"].startswith(p["wikipedia_id"] + "_") for p in kilt_passages)
    assert (work / "results/pooled/pools/wiki/embeddings/1-of-2.npy").is_file()


@pytest.mark.parametrize("kind,params,min_recall", [
    ("fp16", {}, 0.99), ("sq8", {}, 0.9), ("ivfpq", {"nlist": 8, "nprobe": 8, "pq_m": 8}, 0.3),
])
def test_compressed_indexes_against_exact_search(kind, params, min_recall):
    """The compressed kinds for whole-corpus search: their top-10 mostly agrees with the exact
    top-10 (fp16 keeps nearly all of it), at 2d, d and pq_m bytes a vector."""
    from repro.retrieval import build_index

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, 32))
    x = (centers[rng.integers(0, 8, 2000)] + 0.3 * rng.normal(size=(2000, 32))).astype("f4")
    q = x[:50] + 0.1 * rng.normal(size=(50, 32)).astype("f4")
    _, exact = rp.exact_top_k(q, [x], 10)
    index = build_index(x, kind, train_size=1000, **params)
    assert index.ntotal == 2000
    _, found = index.search(q, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= min_recall
    assert index.code_size == {"fp16": 64, "sq8": 32, "ivfpq": 8}[kind]  # bytes a vector


def test_ivfpq_sub_quantizers_must_divide_the_dimension():
    from repro.retrieval import build_index

    with pytest.raises(ValueError, match="pq_m 5 must divide the dimension 32"):
        build_index(np.zeros((100, 32), "f4"), "ivfpq", nlist=2, pq_m=5)


def test_predownload_decompresses_a_gzipped_corpus(tmp_path):
    """psgs_w100.tsv ships as .tsv.gz: the `gunzip` entry of a download writes the tsv."""
    import gzip
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "predownload", Path(__file__).resolve().parents[1] / "scripts" / "predownload.py")
    predownload = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predownload)
    gz = tmp_path / "remote" / "psgs_w100.tsv.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(PSGS.read_bytes()))
    item = {"what": "file", "url": gz.as_uri(), "to": str(tmp_path / "data" / "p.tsv.gz"),
            "gunzip": str(tmp_path / "data" / "p.tsv")}
    predownload.fetch(item, None)
    assert (tmp_path / "data" / "p.tsv").read_bytes() == PSGS.read_bytes()
    assert len(list(iter_psgs_w100(tmp_path / "data" / "p.tsv"))) == 24
