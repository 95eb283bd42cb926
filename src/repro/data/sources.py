"""Fetch a dataset from a source spec into normalized records (see `repro.data.schema`).

Source kinds (`source["kind"]`):
- "synthetic": {"generator": task, "options": {...}, "seed": int} -> `synthetic.generate`.
- "local": {"files": {split: path}, "format": "jsonl"|"tsv"|"parquet" (default: extension),
  "columns": {...}, "lenient": bool, "header": bool (tsv, default true; without a header the
  columns are named "0", "1", ...), "passages": jsonl path, "passage_columns": {...}}.
- "hf": {"path": hub id or builder ("json", "parquet", a local dir), "name", "revision",
  "data_files", "cache_dir", "splits": {our split: dataset split, slicing allowed},
  "columns": {...}, "passages", "passage_columns"} via `datasets.load_dataset`.

`columns` maps a record field to a dotted path into the raw row ("translation.de",
"options.0"), or to a list of paths (giving a list). Without `columns`, the row's own schema
fields are taken. Fields not mapped explicitly get defaults: `id` = f"{split}-{index}",
multiple-choice `source` = mc_source(question, choices, context) and `target` = letter(label),
knowledge `target` = answers[0] and `provenance` = []. A mapped path missing from a row leaves
the field absent (the filter counts the record as malformed). An int `id` becomes a str; a str
`label` of digits becomes an int, a letter its index; a str `answers` becomes [answers].
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.data.schema import MAX_CHOICES, MIN_CHOICES, SPLITS, TASKS, letter, letter_to_index
from repro.data.schema import mc_source as _mc_source
from repro.io import DataError, iter_jsonl, write_json, write_jsonl

Record = dict[str, Any]
FIELDS: dict[str, tuple[str, ...]] = {
    "translation": ("id", "source", "target"),
    "summarization": ("id", "source", "target"),
    "multiple_choice": ("id", "source", "target", "choices", "label", "question", "context"),
    "knowledge": ("id", "source", "target", "answers", "provenance"),
}
PASSAGE_FIELDS = ("id", "title", "text")
FORMATS = {".jsonl": "jsonl", ".tsv": "tsv", ".parquet": "parquet"}
_MISSING = object()


@dataclass
class FetchResult:
    """Records per split, knowledge passages, and per split {"read": n, "malformed_lines": n}."""

    splits: dict[str, list[Record]]
    passages: list[Record] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _lookup(row: Any, path: str | list[str]) -> Any:
    """Value at a dotted path (dict keys, list indices), a list of such values, or _MISSING."""
    if isinstance(path, list):
        values = [_lookup(row, p) for p in path]
        return _MISSING if any(v is _MISSING for v in values) else values
    if isinstance(row, dict) and path in row:
        return row[path]
    cur = row
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(
            cur
        ):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _str_id(v: Any) -> Any:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _finish_mc(rec: Record, mapped: set[str]) -> None:
    label = rec.get("label")
    if isinstance(label, str):  # "2" -> 2, "B" / "(B)" / "B." -> 1; anything else stays a str
        s = label.strip()
        parsed = int(s) if s.isdigit() else letter_to_index(s) if len(s) <= 3 else None
        rec["label"] = label if parsed is None else parsed
    question, context = rec.pop("question", None), rec.pop("context", None)
    choices = rec.get("choices")
    if ("source" not in rec and "source" not in mapped and isinstance(question, str)
            and isinstance(context, str | None) and isinstance(choices, list)
            and MIN_CHOICES <= len(choices) <= MAX_CHOICES
            and all(isinstance(c, str) for c in choices)):
        rec["source"] = _mc_source(question, choices, context)
    label = rec.get("label")
    if ("target" not in rec and "target" not in mapped and isinstance(label, int)
            and 0 <= label < MAX_CHOICES):
        rec["target"] = letter(label)


def _finish_knowledge(rec: Record, mapped: set[str]) -> None:
    answers = rec.get("answers")
    if isinstance(answers, str):
        rec["answers"] = answers = [answers]
    if "target" not in rec and "target" not in mapped and isinstance(answers, list) and answers:
        rec["target"] = answers[0]
    prov = rec.get("provenance", _MISSING)
    if prov is _MISSING and "provenance" not in mapped:
        rec["provenance"] = []
    elif isinstance(prov, list):
        rec["provenance"] = [
            {"wikipedia_id": _str_id(p["wikipedia_id"]), "title": p["title"]}
            if isinstance(p, dict) and "wikipedia_id" in p and "title" in p else p
            for p in prov
        ]


def map_row(row: Record, columns: dict[str, Any] | None, task: str, split: str, index: int
            ) -> Record:
    """Normalize one raw row (see the module docstring for the rules)."""
    mapped = set(columns or ())
    rec: Record = {}
    for name, path in (columns or {f: f for f in FIELDS[task]}).items():
        value = _lookup(row, path)
        if value is not _MISSING:
            rec[name] = value
    if "id" in rec:
        rec["id"] = _str_id(rec["id"])
    elif "id" not in mapped:
        rec["id"] = f"{split}-{index}"
    if task == "multiple_choice":
        _finish_mc(rec, mapped)
    elif task == "knowledge":
        _finish_knowledge(rec, mapped)
    return rec


def _read_tsv(path: Path, lenient: bool, header: bool) -> tuple[list[Record], int]:
    rows: list[Record] = []
    names: list[str] | None = None
    bad = 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            for row in reader:
                if not row or row == [""]:
                    continue
                if names is None:
                    names = row if header else [str(i) for i in range(len(row))]
                    if header:
                        continue
                if len(row) != len(names):
                    if not lenient:
                        raise DataError(f"{path}, line {reader.line_num}: {len(row)} columns, "
                                        f"expected {len(names)}")
                    bad += 1
                    continue
                rows.append(dict(zip(names, row, strict=True)))
        except csv.Error as e:
            raise DataError(f"{path}, line {reader.line_num}: {e}") from e
    return rows, bad


def _read_file(path: Path, fmt: str, lenient: bool, header: bool) -> tuple[list[Record], int]:
    """Rows of one local file and the number of malformed lines skipped."""
    try:
        if fmt == "jsonl":
            bad: list[int] = []
            return list(iter_jsonl(path, lenient=lenient, bad_lines=bad)), len(bad)
        if fmt == "tsv":
            return _read_tsv(path, lenient, header)
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist(), 0
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    except DataError:
        raise
    except ValueError as e:  # includes pyarrow's ArrowInvalid for a corrupt parquet file
        raise DataError(f"{path}: cannot read {fmt} ({e})") from e


def _format(path: Path, fmt: str | None) -> str:
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt not in FORMATS.values():
        raise DataError(f"{path}: unknown format {fmt!r}; set 'format' to one of "
                        f"{sorted(FORMATS.values())}")
    return fmt


def _passages(source: dict[str, Any]) -> tuple[list[Record], dict[str, Any]]:
    if not source.get("passages"):
        return [], {}
    path = Path(source["passages"])
    if not path.is_file():
        raise DataError(f"passages file {path} not found")
    bad: list[int] = []
    rows = list(iter_jsonl(path, lenient=bool(source.get("lenient")), bad_lines=bad))
    columns = source.get("passage_columns") or {f: f for f in PASSAGE_FIELDS}
    passages = []
    for row in rows:
        rec = {k: v for k, p in columns.items() if (v := _lookup(row, p)) is not _MISSING}
        if "id" in rec:
            rec["id"] = _str_id(rec["id"])
        passages.append(rec)
    return passages, {"passages": {"read": len(rows), "malformed_lines": len(bad)}}


def _fetch_local(source: dict[str, Any], task: str) -> FetchResult:
    files = source.get("files") or {}
    lenient, header = bool(source.get("lenient", False)), bool(source.get("header", True))
    splits: dict[str, list[Record]] = {}
    stats: dict[str, Any] = {}
    for split in SPLITS:
        if split not in files:
            raise DataError(f"local source: no file given for split '{split}' (files: {files})")
        path = Path(files[split])
        if not path.is_file():
            raise DataError(f"local source: file for split '{split}' not found: {path}")
        rows, bad = _read_file(path, _format(path, source.get("format")), lenient, header)
        splits[split] = [map_row(r, source.get("columns"), task, split, i)
                         for i, r in enumerate(rows)]
        stats[split] = {"read": len(rows), "malformed_lines": bad}
    passages, pstats = _passages(source)
    return FetchResult(splits=splits, passages=passages, stats={**stats, **pstats})


def _fetch_hf(source: dict[str, Any], task: str) -> FetchResult:
    import datasets

    path, name = source["path"], source.get("name")
    what = f"dataset {path!r}" + (f" ({name})" if name else "")
    if source.get("data_files"):
        what += f" with data_files {source['data_files']}"
    split_map = source.get("splits") or {s: s for s in SPLITS}
    splits: dict[str, list[Record]] = {}
    stats: dict[str, Any] = {}
    for split in SPLITS:
        if split not in split_map:
            raise DataError(f"hf source {what}: no dataset split given for split '{split}'")
        try:
            ds = datasets.load_dataset(
                path, name, revision=source.get("revision"), split=split_map[split],
                data_files=source.get("data_files"), cache_dir=source.get("cache_dir"),
            )
        except Exception as e:  # the hub and builders raise many kinds; name what failed
            raise DataError(f"split '{split}': cannot load split {split_map[split]!r} of {what}: "
                            f"{type(e).__name__}: {e}") from e
        rows = ds.to_list()
        splits[split] = [map_row(r, source.get("columns"), task, split, i)
                         for i, r in enumerate(rows)]
        stats[split] = {"read": len(rows), "malformed_lines": 0}
    passages, pstats = _passages(source)
    return FetchResult(splits=splits, passages=passages, stats={**stats, **pstats})


def fetch(source: dict[str, Any], task: str) -> FetchResult:
    """Load the three splits (and passages) described by `source` as `task` records."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {TASKS}")
    kind = source.get("kind")
    if kind == "synthetic":
        from repro.data import synthetic

        generator = source.get("generator", task)
        if generator != task:
            raise DataError(f"synthetic generator {generator!r} does not make {task!r} records")
        return synthetic.generate(generator, source.get("options") or {}, source.get("seed", 0))
    if kind == "local":
        return _fetch_local(source, task)
    if kind == "hf":
        return _fetch_hf(source, task)
    raise DataError(f"unknown source kind {kind!r}; expected 'synthetic', 'local' or 'hf'")


def write_fetch(result: FetchResult, out_dir: str | os.PathLike[str]) -> None:
    """Write {split}.jsonl, passages.jsonl and fetch_stats.json into `out_dir`."""
    out = Path(out_dir)
    missing = [s for s in SPLITS if s not in result.splits]
    if missing:
        raise DataError(f"fetch result lacks splits {missing}")
    for split in SPLITS:
        write_jsonl(out / f"{split}.jsonl", result.splits[split])
    write_jsonl(out / "passages.jsonl", result.passages)
    write_json(out / "fetch_stats.json", result.stats)
