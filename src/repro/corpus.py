"""First-stage retrieval corpora and Contriever's published passage embeddings.

Corpus formats (`pools.<p>.corpus.format`):
- `psgs_w100`: DPR's 100-word Wikipedia passages (`psgs_w100.tsv`, 21,015,324 rows), the corpus
  of Contriever and Self-RAG. A header `id\\ttext\\ttitle`, then one passage a line; fields are
  CSV-quoted (a text holding a quote is written `"...""..."`), so the file is read with csv's
  default quoting, as Contriever's src/data.py `load_passages` (lines 239-243) reads it.
- `kilt_knowledgesource`: KILT's Wikipedia (`kilt_knowledgesource.json`, 5.9M pages, KILT
  README "Structure of each record"): one page a line, {"_id", "wikipedia_id",
  "wikipedia_title", "text": [paragraphs], "anchors", ...}. text[0] is the title and a paragraph
  holding "Section::::" is a heading; KILT's scripts/create_kilt_data_paragraphs.py (lines
  79-85) skips both, and so do we. Our chunks are DPR's disjoint 100-word blocks: the
  whitespace-separated words of a page's remaining paragraphs, in order, cut every `words`
  words (the last block shorter), id `{wikipedia_id}_{k}`, title the page title, and the
  page's `wikipedia_id` kept for KILT's page-level provenance. (KILT's own 100-token chunks
  cut on spaCy sentences inside sections, so their boundaries differ from ours.)
- `jsonl`: passages {id, title, text[, wikipedia_id]} one a line (the chunked knowledge
  source, or any corpus already in our format).

Contriever's precomputed Wikipedia embeddings (Contriever README, "Alternatively, download
passage embeddings pre-computed with Contriever or Contriever-msmarco": wikipedia_embeddings.tar
per model): the tar holds `wikipedia_embeddings/passages_00`, `passages_01`, ... (the
`{prefix}_{shard_id:02d}` files of generate_passage_embeddings.py line 91), each a pickle of
(ids: list of psgs_w100 ids as str, embeddings: numpy array [n, 768]) (line 95); the shards
are contiguous slices of psgs_w100.tsv in file order (lines 80-86), computed in fp16 unless
--no_fp16 (lines 75-76), so the arrays are float16. We read them with an unpickler that loads
numpy arrays and nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from repro.io import DataError

CORPUS_FORMATS = ("psgs_w100", "kilt_knowledgesource", "jsonl")
PSGS_HEADER = ["id", "text", "title"]
PRECOMPUTED_GLOB = "passages_*"  # Contriever's generate_passage_embeddings.py, --prefix default
Passage = dict[str, str]


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found (scripts/predownload.py fetches the files "
                        "of pools.<p>.corpus.download)")


def iter_psgs_w100(path: Path) -> Iterator[Passage]:
    """Passages of a psgs_w100.tsv file; DataError naming the line of a malformed row."""
    _check_file(path, "psgs_w100 corpus")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        try:
            header = next(reader, None)
            if header != PSGS_HEADER:
                raise DataError(f"{path}, line 1: header {header!r}, expected the "
                                f"psgs_w100 header {PSGS_HEADER!r}")
            for row in reader:
                if len(row) != 3:
                    raise DataError(f"{path}, line {reader.line_num}: {len(row)} fields, "
                                    "expected 3 (id, text, title)")
                yield {"id": row[0], "title": row[2], "text": row[1]}
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: {e}") from e


def iter_jsonl_passages(path: Path) -> Iterator[Passage]:
    """Passages of a jsonl corpus, each checked to have str id, title and text."""
    from repro.io import iter_jsonl

    _check_file(path, "passage corpus")
    for n, p in enumerate(iter_jsonl(path), start=1):
        if not all(isinstance(p.get(k), str) for k in ("id", "title", "text")):
            raise DataError(f"{path}, record {n}: a passage needs str id, title and text")
        yield p


def iter_passages(path: Path, fmt: str) -> Iterator[Passage]:
    """The passages of a corpus file in file order (`psgs_w100` or `jsonl`)."""
    if fmt == "psgs_w100":
        return iter_psgs_w100(Path(path))
    if fmt == "jsonl":
        return iter_jsonl_passages(Path(path))
    raise DataError(f"{path}: corpus format {fmt!r} is read through its chunked jsonl "
                    f"(readable formats: psgs_w100, jsonl)")


def count_passages(path: Path, fmt: str) -> int:
    return sum(1 for _ in iter_passages(path, fmt))


def chunk_page(page: dict[str, Any], words: int = 100) -> list[Passage]:
    """The `words`-word passages of one KILT knowledge-source page (see the module docstring)."""
    body = [w for par in page["text"][1:] if "Section::::" not in par for w in par.split()]
    wid, title = str(page["wikipedia_id"]), page["wikipedia_title"]
    return [{"id": f"{wid}_{k}", "wikipedia_id": wid, "title": title,
             "text": " ".join(body[start : start + words])}
            for k, start in enumerate(range(0, len(body), words))]


def chunk_knowledge_source(src: Path, out: Path, words: int = 100) -> dict[str, int]:
    """Write the chunked passages of kilt_knowledgesource.json to `out` (jsonl)."""
    _check_file(Path(src), "KILT knowledge source")
    if words < 1:
        raise DataError(f"pools.<p>.corpus.words must be >= 1, got {words}")
    pages = passages = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(src, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as w:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                page = json.loads(line)
                chunks = chunk_page(page, words)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise DataError(f"{src}, line {n}: not a KILT knowledge-source page "
                                f"({type(e).__name__}: {e}); expected wikipedia_id, "
                                "wikipedia_title and a list of paragraphs in text") from e
            pages += 1
            for p in chunks:
                w.write(json.dumps(p, ensure_ascii=False) + "\n")
            passages += len(chunks)
    tmp.replace(out)
    return {"pages": pages, "passages": passages, "words": words}


def passages_by_id(path: Path, fmt: str, ids: set[str]) -> dict[str, Passage]:
    """The passages of the corpus whose id is in `ids` (one scan of the file)."""
    return {p["id"]: p for p in iter_passages(path, fmt) if p["id"] in ids}


class _ArraysOnly(pickle.Unpickler):
    """Unpickler of lists, strings and numpy arrays: no other class is ever loaded."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype")} | {
        (f"numpy.{core}.{mod}", name) for core in ("core", "_core")
        for mod, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                          ("numeric", "_frombuffer"))}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: an embeddings file "
                                     "holds a list of ids and a numpy array")


def precomputed_files(directory: Path) -> list[Path]:
    """Contriever's embedding files in a directory (`passages_*`, in name order)."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob(PRECOMPUTED_GLOB) if p.is_file())
    if not files:
        raise DataError(f"{directory}: no Contriever embedding files ({PRECOMPUTED_GLOB}); "
                        "extract wikipedia_embeddings.tar there (scripts/predownload.py)")
    return files


def load_precomputed(path: Path) -> tuple[list[str], np.ndarray]:
    """(ids, float array [n, d]) of one of Contriever's embedding files."""
    try:
        with open(path, "rb") as f:
            obj = _ArraysOnly(io.BufferedReader(f)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        raise DataError(f"{path}: not a Contriever embeddings file ({e})") from e
    if not (isinstance(obj, tuple | list) and len(obj) == 2
            and isinstance(obj[1], np.ndarray) and obj[1].ndim == 2):
        raise DataError(f"{path}: expected a pickled (ids, embeddings [n, d]) pair")
    ids, vectors = [str(i) for i in obj[0]], obj[1]
    if len(ids) != vectors.shape[0]:
        raise DataError(f"{path}: {len(ids)} ids for {vectors.shape[0]} embeddings")
    return ids, vectors
