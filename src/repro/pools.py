"""Per-question candidate pools: each test question's top-k passages from a first-stage dense
retriever (Contriever) over a passage corpus, the pools the co-supervision paper decodes in
(official configs/datasets.py: `ndocs = 100` over `*.contriever_msmarco.top100.json`).

A pool (`pools.<p>`) is a corpus, a retriever, the corpus embeddings in shards, and k. The
stages (rules/pools.smk), with their files under results/pools/<p>/:
  corpus.jsonl                      kilt_knowledgesource only: the chunked passages
  embeddings/<k>-of-<K>.npy, .ids.json   shard k of the corpus embedded (or one of Contriever's
                                    precomputed files converted)
  <dataset>/candidates.jsonl        one line per test question of the raw test split:
                                    {"id", "candidates": [passage ids, best first], "scores"}
  <dataset>/passages.jsonl          the passages those pools name (not the whole corpus)
The dataset's filter then writes each kept test record's `candidates` and the pooled
passages into results/data/<task>/<dataset>/{test,passages}.jsonl (`attach_candidates`), so
decoding (co-supervision's `retrieval_scope: candidates`, exact inner product inside the
pool) and evaluation read the same records, and the run's Embseq embeds only pooled passages.

Search is exact: an inner-product faiss flat search of each shard in row chunks, merged into
a running top-k (ties broken by corpus order), so it needs one chunk in memory, not the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from repro.io import DataError, read_json, write_json, write_jsonl

SEARCH_CHUNK = 262_144  # corpus rows per flat search (0.8 GB of float32 at d = 768)


# --- embedding -----------------------------------------------------------------------------

def save_shard(prefix: Path, vectors: np.ndarray, ids: list[str]) -> None:
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    np.save(prefix.with_name(prefix.name + ".npy"), vectors)
    write_json(prefix.with_name(prefix.name + ".ids.json"), ids)


def load_shard(prefix: Path) -> tuple[np.ndarray, list[str]]:
    """(vectors memory-mapped, ids) of one embedding shard."""
    prefix = Path(prefix)
    npy, ids_path = prefix.with_name(prefix.name + ".npy"), prefix.with_name(
        prefix.name + ".ids.json")
    if not npy.is_file() or not ids_path.is_file():
        raise DataError(f"{npy}: embedding shard missing (made by the pool_embeddings rule)")
    vectors, ids = np.load(npy, mmap_mode="r"), read_json(ids_path)
    if vectors.ndim != 2 or len(ids) != vectors.shape[0]:
        raise DataError(f"{ids_path}: {len(ids)} ids for {vectors.shape[0]} rows in {npy}")
    return vectors, ids


def embed_shard(spec: dict[str, Any], corpus: str, fmt: str, shard: int, n_shards: int,
                out_prefix: Path) -> dict[str, Any]:
    """Write shard k of K of the pool's corpus embeddings: rows [k*N/K, (k+1)*N/K) embedded by
    the retriever, or the k-th of Contriever's precomputed files when configured."""
    from repro.retrieval import shard_range

    pre = (spec.get("embeddings") or {}).get("precomputed")
    if pre:
        from repro.corpus import load_precomputed, precomputed_files

        files = precomputed_files(Path(pre))
        if len(files) != n_shards:
            raise DataError(f"{pre}: {len(files)} precomputed embedding files, but "
                            f"pools.<p>.shards is {n_shards}; set it to {len(files)}")
        ids, vectors = load_precomputed(files[shard])
        save_shard(out_prefix, vectors, ids)
        return {"shard": shard, "n": len(ids), "source": str(files[shard])}
    from repro.contriever import RetrieverSettings, encode, load_retriever, passage_text
    from repro.corpus import count_passages, iter_passages

    rows = shard_range(count_passages(Path(corpus), fmt), shard, n_shards)
    part = list(islice(iter_passages(Path(corpus), fmt), rows.start, rows.stop))
    s = RetrieverSettings.from_dict(spec.get("retriever") or {})
    model, tok = load_retriever(s)
    vectors = encode(model, tok, [passage_text(p, s) for p in part], s.max_len, s.batch_size)
    save_shard(out_prefix, vectors, [p["id"] for p in part])
    return {"shard": shard, "n": len(part), "rows": [rows.start, rows.stop]}


# --- search --------------------------------------------------------------------------------

def merge_top_k(best: tuple[np.ndarray, np.ndarray], scores: np.ndarray, rows: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score, corpus row) per query of two candidate sets; ties: lower row first.
    Rows < 0 (faiss's padding) are dropped."""
    s = np.concatenate([best[0], scores], axis=1)
    r = np.concatenate([best[1], rows], axis=1)
    s = np.where(r < 0, -np.inf, s)
    order = np.lexsort((np.where(r < 0, np.iinfo(np.int64).max, r), -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), np.take_along_axis(r, order, 1)


def exact_top_k(queries: np.ndarray, shards: Iterable[np.ndarray], k: int,
                chunk: int = SEARCH_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of each query over the rows of all shards in order:
    (scores [nq, k], global row numbers [nq, k]), best first."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    best = (np.full((len(q), 0), -np.inf, np.float32), np.zeros((len(q), 0), np.int64))
    offset = 0
    for vectors in shards:
        for start in range(0, vectors.shape[0], chunk):
            x = np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32)
            index = faiss.IndexFlatIP(x.shape[1])
            index.add(x)
            scores, rows = index.search(q, min(k, x.shape[0]))
            best = merge_top_k(best, scores, np.where(rows < 0, -1, rows + offset + start), k)
        offset += vectors.shape[0]
    return best


def _queries(test_path: Path) -> tuple[list[dict[str, Any]], int]:
    """The raw test records a pool is retrieved for: those with a str id and question
    (`source`), first of each id (the filter drops the others as malformed or repeated), and
    the number left out."""
    from repro.io import read_jsonl

    records = read_jsonl(test_path)
    seen: set[str] = set()
    kept = []
    for r in records:
        if isinstance(r.get("id"), str) and isinstance(r.get("source"), str) and (
                r["id"] not in seen):
            seen.add(r["id"])
            kept.append(r)
    if not kept:
        raise DataError(f"{test_path}: no test record with a str id and source to retrieve for")
    return kept, len(records) - len(kept)


def search_pools(spec: dict[str, Any], test_path: Path, prefixes: list[Path], corpus: str,
                 fmt: str, out_dir: Path, threads: int | None = None) -> dict[str, Any]:
    """Top-k pools of the test questions: candidates.jsonl and the pooled passages.jsonl."""
    import faiss

    from repro.contriever import RetrieverSettings, encode, load_retriever, query_text
    from repro.corpus import passages_by_id

    if threads:
        faiss.omp_set_num_threads(threads)

    records, left_out = _queries(test_path)
    s = RetrieverSettings.from_dict(spec.get("retriever") or {})
    model, tok = load_retriever(s)
    q = encode(model, tok, [query_text(r["source"], s) for r in records], s.max_len,
               s.query_batch_size)
    shards = [load_shard(p) for p in prefixes]
    dims = {v.shape[1] for v, _ in shards}
    if dims != {q.shape[1]}:
        raise DataError(f"pool embeddings of dimension {sorted(dims)} but the retriever "
                        f"{s.path} gives {q.shape[1]}: embeddings and retriever differ")
    scores, rows = exact_top_k(q, (v for v, _ in shards), spec["k"])
    ids = [i for _, shard_ids in shards for i in shard_ids]
    pools = [{"id": r["id"], "candidates": [ids[j] for j in row if j >= 0],
              "scores": [round(float(x), 6) for x, j in zip(sc, row, strict=True) if j >= 0]}
             for r, sc, row in zip(records, scores, rows, strict=True)]
    wanted = {c for p in pools for c in p["candidates"]}
    found = passages_by_id(Path(corpus), fmt, wanted)
    missing = sorted(wanted - set(found))
    if missing:
        raise DataError(f"{corpus}: {len(missing)} pooled passage ids are not in the corpus "
                        f"(e.g. {missing[:3]}): the embeddings were made from another corpus")
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "candidates.jsonl", pools)
    write_jsonl(out_dir / "passages.jsonl", (found[i] for i in sorted(wanted, key=_id_key)))
    return {"questions": len(pools), "left_out": left_out, "k": spec["k"],
            "passages": len(wanted), "corpus_rows": len(ids)}


def _id_key(pid: str) -> tuple[int, int | str]:
    return (0, int(pid)) if pid.isdigit() else (1, pid)


# --- reading pools into the test split -----------------------------------------------------

def read_candidates(path: Path, passage_ids: set[str]) -> dict[str, list[str]]:
    """Question id -> candidate passage ids of a candidates file; DataError naming the file,
    record and question for a repeated question, an empty pool or an unknown passage."""
    from repro.io import iter_jsonl

    if not Path(path).is_file():
        raise DataError(f"{path}: candidates file missing")
    pools: dict[str, list[str]] = {}
    for n, row in enumerate(iter_jsonl(path), start=1):
        qid, cands = row.get("id"), row.get("candidates")
        where = f"{path}, record {n} (question {qid!r})"
        if not isinstance(qid, str) or not isinstance(cands, list) or not all(
                isinstance(c, str) for c in cands):
            raise DataError(f"{where}: expected {{\"id\": str, \"candidates\": [str, ...]}}")
        if qid in pools:
            raise DataError(f"{where}: question listed twice")
        check_pool(cands, passage_ids, where)
        pools[qid] = cands
    return pools


def check_pool(cands: list[str], passage_ids: set[str], where: str) -> None:
    """DataError naming `where` for an empty pool or a candidate not among passage_ids."""
    if not cands:
        raise DataError(f"{where}: empty pool (no candidate passages)")
    unknown = [c for c in cands if c not in passage_ids]
    if unknown:
        raise DataError(f"{where}: candidate passages not in the dataset's passages: "
                        f"{unknown[:3]}")


def attach_candidates(records: list[dict[str, Any]], raw: list[dict[str, Any]],
                      pools: dict[str, list[str]], candidates_path: Path,
                      test_path: Path) -> list[dict[str, Any]]:
    """The kept test records with their pool as `candidates`. Every pool must name a question
    of the raw test split and every kept record must have a pool (DataError naming both files)."""
    raw_ids = {r.get("id") for r in raw}
    stray = [q for q in pools if q not in raw_ids]
    if stray:
        raise DataError(f"{candidates_path}: pools for questions not in {test_path}: "
                        f"{stray[:3]} (a stale or foreign candidates file)")
    out = []
    for rec in records:
        if rec["id"] not in pools:
            raise DataError(f"{test_path}: test record {rec['id']!r} has no pool in "
                            f"{candidates_path}")
        if rec.get("candidates"):
            raise DataError(f"{test_path}: test record {rec['id']!r} has candidates from its "
                            "source and a pool (datasets.<d>.pool): give it one of them")
        out.append({**rec, "candidates": pools[rec["id"]]})
    return out


def check_record_candidates(records: list[dict[str, Any]], passage_ids: set[str],
                            where: str) -> None:
    """Every record's `candidates`, where present, is non-empty and names known passages."""
    for rec in records:
        if rec.get("candidates") is not None:
            check_pool(rec["candidates"], passage_ids, f"{where}: record {rec.get('id')!r}")
