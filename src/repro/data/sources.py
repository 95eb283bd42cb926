"""Fetch a dataset from a source spec into normalized records (see `repro.data.schema`).

Source kinds (`source["kind"]`):
- "synthetic": {"generator": task, "options": {...}, "seed": int} -> `synthetic.generate`.
- "local": {"files": {split: path}, "format": "jsonl"|"tsv"|"parquet"|"json"|"pickle" (default:
  extension), "columns": {...}, "lenient": bool, "header": bool (tsv, default true; without a
  header the columns are named "0", "1", ...), "field" (json/pickle: the key holding the rows)}.
- "hf": {"path": hub id or builder ("json", "parquet", a local dir), "name", "revision",
  "data_files", "cache_dir", "splits": {our split: dataset split, slicing allowed},
  "columns": {...}} via `datasets.load_dataset`.

Per split, `splits[split]` may also be a mapping that overrides any of these keys for that split
only (`kind`, `path`, `name`, `revision`, `data_files`, `file`, `format`, `columns`, ...; its
`split` names the dataset split), e.g. WMT training pairs with FLORES dev/devtest. Options that
work for both kinds, at top level or per split:
- "slice": [start, stop] (Python slice of the split's rows), then "sample": {"n", "seed"} (n rows
  drawn without replacement, kept in corpus order; the same rows whether the data come from the
  hub or a local copy of it).
- "join": {"path", "name", "revision", "data_files", "split", "kind", "file", ..., "key",
  "row_key", "field"}: rows of a second dataset (kind hf unless given; split: this split's),
  indexed by their `key`, attached under `field` (default "joined") to each row whose `row_key`
  path matches; e.g. KILT TriviaQA ids -> TriviaQA questions.
- "candidates": {"path", "columns", "id_format"}: per-question candidate passages. `path` is the
  list in a raw row; an item is a passage (a dict mapped by `columns`, default id/title/text) or a
  bare passage id. Ids are formatted with `id_format` (default "{}"); a passage without an id gets
  "{record id}#{index}". The record gets `candidates` (passage ids, in order) and inline passages
  join the dataset's passages.
- "convert": "cosup_official" with "ids2text" (path of the {"[k_<id>]": passage} JSON): the rows
  are the released co-supervision training data (input / output with [k_<id>] placeholders /
  evidence) and become records and passages through repro.data.cosup_format.convert_official
  (`columns` is not used); "convert": "selfrag" with "convert_options" ({"instructions":
  {dataset_name: instruction}, "prompt_template", "keep_datasets"}): Self-RAG's training rows
  through repro.data.selfrag.convert_selfrag. The converter's counts go to the split's fetch
  stats under "convert" (and from there to filter_stats.json).
- "fallback": a mapping of split keys used instead of the split's own `file`, `format`,
  `convert`, ... when that local file does not exist (the official co-supervision data, else
  Self-RAG's); the split's stats record `"source": "fallback"` (else "primary").
Top-level "download" (a list of {url | hf_repo, repo_type, revision; to; extract}) is not read
here: scripts/predownload.py fetches those files on a login node. Top-level "passages" (jsonl of
{id, title, text} mapped by "passage_columns", or a .json object {id: text}) gives the passage
corpus of knowledge tasks.

`columns` maps a record field to a dotted path into the raw row ("translation.de",
"options.0"), or to a list of paths (giving a list). A `*` in a path maps over a list and
flattens one level ("output.*.answer": every answer of every output). Without `columns`, the
row's own schema fields are taken. Fields not mapped explicitly get defaults: `id` =
f"{split}-{index}", multiple-choice `source` = mc_source(question, choices, context) and `target`
= letter(label), knowledge `target` = answers[0] and `provenance` = []. A mapped path missing
from a row leaves the field absent (the filter counts the record as malformed). An int `id`
becomes a str; a str `label` of digits becomes an int, a letter its index; a str `answers`
becomes [answers]; knowledge answers lose empty and repeated strings, provenance repeated items.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

from repro.data import synthetic
from repro.data.schema import (
    MAX_CHOICES,
    MIN_CHOICES,
    SPLITS,
    FetchResult,
    letter,
    letter_to_index,
)
from repro.data.schema import mc_source as _mc_source
from repro.io import DataError, iter_jsonl, write_json, write_jsonl
from repro.tasks import TASKS

Record = dict[str, Any]
FIELDS: dict[str, tuple[str, ...]] = {
    "translation": ("id", "source", "target"),
    "summarization": ("id", "source", "target"),
    "multiple_choice": ("id", "source", "target", "choices", "label", "question", "context"),
    "knowledge": ("id", "source", "target", "answers", "provenance"),
}
PASSAGE_FIELDS = ("id", "title", "text", "wikipedia_id")  # wikipedia_id: KILT's page id
FORMATS = {".jsonl": "jsonl", ".tsv": "tsv", ".parquet": "parquet", ".json": "json",
           ".pickle": "pickle", ".pkl": "pickle"}
# Keys of a per-split override (`splits[split]` as a mapping) and of a `join` spec.
SPLIT_KEYS = {"kind", "path", "name", "revision", "data_files", "cache_dir", "split", "file",
              "format", "columns", "lenient", "header", "field", "slice", "sample", "join",
              "candidates", "convert", "ids2text", "convert_options", "fallback"}
_MISSING = object()


def _lookup(row: Any, path: str | list[str]) -> Any:
    """Value at a dotted path (dict keys, list indices, `*` over a list), a list of such values,
    or _MISSING."""
    if isinstance(path, list):
        values = [_lookup(row, p) for p in path]
        return _MISSING if any(v is _MISSING for v in values) else values
    if isinstance(row, dict) and path in row:
        return row[path]
    parts = path.split(".")
    cur = row
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(cur, list):
                return _MISSING
            rest = ".".join(parts[i + 1:])
            out: list[Any] = []
            for item in cur:
                v = _lookup(item, rest) if rest else item
                if v is not _MISSING:
                    out.extend(v if isinstance(v, list) else [v])
            return out
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
        answers = [answers]
    if isinstance(answers, list) and all(isinstance(a, str) for a in answers):
        answers = list(dict.fromkeys(a for a in answers if a.strip()))
    if answers is not None:
        rec["answers"] = answers
    if "target" not in rec and "target" not in mapped and isinstance(answers, list) and answers:
        rec["target"] = answers[0]
    prov = rec.get("provenance", _MISSING)
    if prov is _MISSING and "provenance" not in mapped:
        rec["provenance"] = []
    elif isinstance(prov, list):
        items = [
            {"wikipedia_id": _str_id(p["wikipedia_id"]), "title": p["title"]}
            if isinstance(p, dict) and "wikipedia_id" in p and "title" in p else p
            for p in prov
        ]
        seen: set[str] = set()
        rec["provenance"] = []
        for p in items:
            key = json.dumps(p, sort_keys=True, ensure_ascii=False, default=str)
            if key not in seen:
                seen.add(key)
                rec["provenance"].append(p)


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


class _RowsOnly(pickle.Unpickler):
    """Unpickler of plain containers only (dict, list, str, numbers): no class is ever loaded."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain dicts, "
                                     "lists, strings and numbers are read")


def _rows_of(obj: Any, path: Path, field: str | None) -> list[Record]:
    """Rows of a JSON/pickle document: a list of objects, `obj[field]`, or a dict of columns."""
    if field is not None:
        if not isinstance(obj, dict) or field not in obj:
            raise DataError(f"{path}: no key {field!r} at the top level (set 'field')")
        obj = obj[field]
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {k: len(v) for k, v in obj.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"{path}: columns of different lengths {lengths}")
        names = list(obj)
        return [dict(zip(names, vals, strict=True)) for vals in zip(*obj.values(), strict=True)]
    if isinstance(obj, list):
        bad = next((i for i, r in enumerate(obj) if not isinstance(r, dict)), None)
        if bad is not None:
            raise DataError(f"{path}: item {bad} is not an object")
        return obj
    raise DataError(f"{path}: expected a list of objects or a dict of equal-length lists"
                    + ("" if field else " (or set 'field' to the key holding them)"))


def _read_file(path: Path, fmt: str, lenient: bool, header: bool, field: str | None = None
               ) -> tuple[list[Record], int]:
    """Rows of one local file and the number of malformed lines skipped."""
    try:
        if fmt == "jsonl":
            bad: list[int] = []
            return list(iter_jsonl(path, lenient=lenient, bad_lines=bad)), len(bad)
        if fmt == "tsv":
            return _read_tsv(path, lenient, header)
        if fmt == "json":
            with open(path, encoding="utf-8") as f:
                return _rows_of(json.load(f), path, field), 0
        if fmt == "pickle":
            with open(path, "rb") as fb:
                return _rows_of(_RowsOnly(io.BufferedReader(fb)).load(), path, field), 0
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist(), 0
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"{path}: cannot read pickle ({e})") from e
    except ValueError as e:  # json errors, pyarrow's ArrowInvalid for a corrupt parquet file
        raise DataError(f"{path}: cannot read {fmt} ({e})") from e


def _format(path: Path, fmt: str | None) -> str:
    fmt = fmt or FORMATS.get(path.suffix.lower())
    if fmt not in FORMATS.values():
        raise DataError(f"{path}: unknown format {fmt!r}; set 'format' to one of "
                        f"{sorted(set(FORMATS.values()))}")
    return fmt


def _passages(source: dict[str, Any]) -> tuple[list[Record], dict[str, Any]]:
    if not source.get("passages"):
        return [], {}
    path = Path(source["passages"])
    if not path.is_file():
        hint = " (scripts/predownload.py fetches it)" if source.get("download") else ""
        raise DataError(f"passages file {path} not found{hint}")
    bad: list[int] = []
    if path.suffix.lower() == ".json":  # {id: text} (e.g. ids2text.json) or a list of objects
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        rows = ([{"id": k, "title": "", "text": v} for k, v in obj.items()]
                if isinstance(obj, dict) else _rows_of(obj, path, None))
    else:
        rows = list(iter_jsonl(path, lenient=bool(source.get("lenient")), bad_lines=bad))
    columns = source.get("passage_columns") or {f: f for f in PASSAGE_FIELDS}
    passages = []
    for row in rows:
        rec = {k: v for k, p in columns.items() if (v := _lookup(row, p)) is not _MISSING}
        if "id" in rec:
            rec["id"] = _str_id(rec["id"])
        passages.append(rec)
    return passages, {"passages": {"read": len(rows), "malformed_lines": len(bad)}}


def split_source(source: dict[str, Any], split: str) -> dict[str, Any]:
    """The source of one split: the top-level keys, overridden by `splits[split]` if a mapping.

    For kind "hf" the result's `split` is the dataset split to load (`splits[split]` when a
    string; else the override's `split`, default our split name); for kind "local" its `file` is
    `files[split]` unless the override gives one.
    """
    spec = {k: v for k, v in source.items() if k not in ("splits", "files", "passages",
                                                          "passage_columns")}
    over = (source.get("splits") or {}).get(split)
    if isinstance(over, dict):
        unknown = sorted(set(over) - SPLIT_KEYS)
        if unknown:
            raise DataError(f"source.splits.{split}: unknown keys {unknown} "
                            f"(known: {sorted(SPLIT_KEYS)})")
        if over.get("kind", spec.get("kind")) != spec.get("kind"):  # another kind: start afresh
            spec = {k: v for k, v in spec.items() if k in ("lenient", "cache_dir")}
        spec.update(over)
    elif over is not None:
        spec["split"] = over
    if source.get("splits") and over is None and not (source.get("files") or {}).get(split):
        spec["absent"] = True  # a split map that lacks this split: an empty split
        spec["split"] = None
    elif spec.get("kind") == "local":
        spec.setdefault("file", (source.get("files") or {}).get(split))
    else:
        spec.setdefault("split", split)
    return spec


def _indices(n: int, spec: dict[str, Any], where: str) -> list[int] | None:
    """Row indices after `slice` then `sample` (None: all rows, in order)."""
    if not spec.get("slice") and not spec.get("sample"):
        return None
    idx = range(n)
    if spec.get("slice"):
        sl = spec["slice"]
        if not (isinstance(sl, list) and len(sl) == 2):
            raise DataError(f"{where}: 'slice' must be [start, stop] (null for open ends)")
        idx = idx[slice(sl[0], sl[1])]
    out = list(idx)
    if spec.get("sample"):
        sample = spec["sample"]
        if not isinstance(sample, dict) or not isinstance(sample.get("n"), int):
            raise DataError(f"{where}: 'sample' must be {{n: int, seed: int}}")
        k = min(sample["n"], len(out))
        picked = random.Random(sample.get("seed", 0)).sample(range(len(out)), k)
        out = [out[i] for i in sorted(picked)]
    return out


def _load_hf(spec: dict[str, Any], where: str) -> list[Record]:
    import datasets

    path, name = spec["path"], spec.get("name")
    what = f"dataset {path!r}" + (f" ({name})" if name else "")
    if spec.get("data_files"):
        what += f" with data_files {spec['data_files']}"
    if spec.get("split") is None:
        raise DataError(f"hf source {what}: no dataset split given for {where}")
    try:
        ds = datasets.load_dataset(
            path, name, revision=spec.get("revision"), split=spec["split"],
            data_files=spec.get("data_files"), cache_dir=spec.get("cache_dir"),
        )
    except Exception as e:  # the hub and builders raise many kinds; name what failed
        raise DataError(f"{where}: cannot load split {spec['split']!r} of {what}: "
                        f"{type(e).__name__}: {e}") from e
    idx = _indices(len(ds), spec, where)
    return (ds if idx is None else ds.select(idx)).to_list()


def _load_rows(spec: dict[str, Any], where: str) -> tuple[list[Record], int]:
    """Raw rows (after slice/sample) of one split spec and the malformed lines skipped."""
    kind = spec.get("kind")
    if spec.get("absent"):
        return [], 0
    if kind == "hf":
        return _load_hf(spec, where), 0
    if kind != "local":
        raise DataError(f"{where}: unknown source kind {kind!r}; expected 'local' or 'hf'")
    if not spec.get("file"):
        raise DataError(f"local source: no file given for {where}")
    path = Path(spec["file"])
    if not path.is_file():
        hint = (" (download it first: scripts/predownload.py, the source's `download`)"
                if spec.get("download") else "")
        raise DataError(f"local source: file for {where} not found: {path}{hint}")
    fmt = _format(path, spec.get("format"))
    rows, bad = _read_file(path, fmt, bool(spec.get("lenient", False)),
                           bool(spec.get("header", True)), spec.get("field"))
    if not rows and not bad:
        raise DataError(_empty_file_message(path, fmt, where, bool(spec.get("header", True))))
    idx = _indices(len(rows), spec, where)
    return (rows if idx is None else [rows[i] for i in idx]), bad


def _empty_file_message(path: Path, fmt: str, where: str, header: bool) -> str:
    """What an input file without rows is: 0 bytes, or (tsv) a header line and nothing else."""
    if path.stat().st_size == 0:
        what = "is empty (0 bytes)"
    elif fmt == "tsv" and header:
        what = "has a header line but no rows"
    else:
        what = "holds no rows"
    hint = " (a TSV file needs a header row naming its columns, then one row per record)" if (
        fmt == "tsv") else ""
    return f"local source: the file of {where}, {path}, {what}{hint}"


# Fields a record of each task cannot do without when `columns` is not given (the others have
# defaults, see map_row): they must be columns of the file.
NEEDED_FIELDS = {"translation": ("source", "target"), "summarization": ("source", "target"),
                 "knowledge": ("source",), "multiple_choice": ()}


def check_columns(rows: list[Record], columns: dict[str, Any] | None, task: str,
                  what: str) -> None:
    """Every path of `columns` (or, without it, each field the task needs) is found in some
    row; else DataError naming `what` (the user's file), the column, and the columns found."""
    if not rows:
        return
    wanted = columns if columns else {f: f for f in NEEDED_FIELDS[task]}
    for field, path in wanted.items():
        for p in path if isinstance(path, list) else [path]:
            if any(_lookup(row, p) is not _MISSING for row in rows):
                continue
            found = sorted({str(k) for row in rows[:1000] for k in row})
            how = (f"mapped to `{field}` by source.columns" if columns else
                   f"the task's `{field}` field; map your column to it in source.columns")
            raise DataError(f"{what}: no column {p!r} ({how}); columns found: "
                            f"{', '.join(found)}")


def _join(rows: list[Record], join: dict[str, Any], split_spec: dict[str, Any], where: str
          ) -> int:
    """Attach matching rows of `join` under join["field"]; return the number unmatched."""
    for key in ("key", "row_key"):
        if not join.get(key):
            raise DataError(f"{where}: join needs '{key}'")
    spec = {"kind": "hf", "split": split_spec.get("split"), "cache_dir": split_spec.get(
        "cache_dir"), **{k: v for k, v in join.items() if k not in ("key", "row_key", "field")}}
    other, _ = _load_rows(spec, f"{where} (join)")
    index = {str(v): r for r in other if (v := _lookup(r, join["key"])) is not _MISSING}
    field_name = join.get("field", "joined")
    unmatched = 0
    for row in rows:
        match = index.get(str(_lookup(row, join["row_key"])))
        if match is None:
            unmatched += 1
        else:
            row[field_name] = match
    return unmatched


def _candidates(row: Record, rec: Record, cfg: dict[str, Any], passages: dict[str, Record]
                ) -> None:
    """Set rec["candidates"] from the list at cfg["path"]; add inline passages to `passages`."""
    items = _lookup(row, cfg["path"])
    if items is _MISSING or not isinstance(items, list):
        return
    columns = cfg.get("columns") or {f: f for f in PASSAGE_FIELDS}
    fmt = cfg.get("id_format", "{}")
    ids: list[str] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            doc = {k: v for k, p in columns.items() if (v := _lookup(item, p)) is not _MISSING}
            raw_id = doc.get("id")
            pid = fmt.format(raw_id) if raw_id is not None else f"{rec.get('id')}#{i}"
            doc["id"] = pid
            passages.setdefault(pid, doc)
        else:
            pid = fmt.format(item)
        ids.append(pid)
    rec["candidates"] = ids


def _convert(rows: list[Record], spec: dict[str, Any], task: str, where: str,
             stats: dict[str, Any], passages: dict[str, Record]) -> list[Record]:
    """Records of a `convert` split; its passages are added to `passages`."""
    if spec["convert"] not in ("cosup_official", "selfrag") or task != "knowledge":
        raise DataError(f"{where}: unknown convert {spec['convert']!r} for task {task!r} "
                        "(known: 'cosup_official' and 'selfrag' for knowledge)")
    where = f"{where} ({spec.get('file') or spec.get('path')})"
    if spec["convert"] == "selfrag":
        from repro.data.selfrag import convert_selfrag

        opts = spec.get("convert_options") or {}
        unknown = sorted(set(opts) - {"instructions", "prompt_template", "keep_datasets"})
        if unknown or "prompt_template" not in opts:
            raise DataError(f"{where}: convert_options needs 'prompt_template' (and may have "
                            f"'instructions', 'keep_datasets'); unknown: {unknown}")
        records, converted, cstats = convert_selfrag(
            rows, opts.get("instructions") or {}, opts["prompt_template"],
            opts.get("keep_datasets"), where=where)
    else:
        from repro.data.cosup_format import convert_official

        ids2text_path = Path(spec.get("ids2text") or "")
        if not ids2text_path.is_file():
            raise DataError(f"{where}: ids2text file {str(ids2text_path)!r} not found (set "
                            "'ids2text'; scripts/predownload.py fetches it)")
        with open(ids2text_path, encoding="utf-8") as f:
            ids2text = json.load(f)
        records, converted, cstats = convert_official(rows, ids2text, where=where)
    for p in converted:
        passages.setdefault(p["id"], p)
    stats["convert"] = {"kind": spec["convert"], **cstats}
    return records


def _with_fallback(spec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The split spec to read, and "primary" or "fallback" (None without a `fallback`): the
    `fallback` keys replace the split's own when its local file does not exist."""
    fallback = spec.pop("fallback", None)
    if not fallback or spec.get("absent"):
        return spec, None
    if spec.get("kind") != "local" or (spec.get("file") and Path(spec["file"]).is_file()):
        return spec, "primary"
    if not isinstance(fallback, dict):
        raise DataError(f"fallback of file {spec.get('file')!r}: must be a mapping of split keys")
    unknown = sorted(set(fallback) - SPLIT_KEYS)
    if unknown:
        raise DataError(f"fallback: unknown keys {unknown} (known: {sorted(SPLIT_KEYS)})")
    drop = ("convert", "ids2text", "convert_options", "format", "columns", "field")
    return {**{k: v for k, v in spec.items() if k not in drop}, **fallback}, "fallback"


def _fetch_rows(source: dict[str, Any], task: str) -> FetchResult:
    splits: dict[str, list[Record]] = {}
    stats: dict[str, Any] = {}
    passages, pstats = _passages(source)
    inline: dict[str, Record] = {}
    for split in SPLITS:
        spec, origin = _with_fallback(split_source(source, split))
        where = f"split '{split}'"
        rows, bad = _load_rows(spec, where)
        st: dict[str, Any] = {"read": len(rows), "malformed_lines": bad}
        if origin:
            st["source"] = origin
        if spec.get("join") and not spec.get("absent"):
            st["unjoined"] = _join(rows, spec["join"], spec, where)
        if spec.get("convert"):
            records = _convert(rows, spec, task, where, st, inline)
        else:
            check_columns(rows, spec.get("columns"), task, _what(spec, where))
            records = []
            for i, row in enumerate(rows):
                rec = map_row(row, spec.get("columns"), task, split, i)
                if spec.get("candidates"):
                    _candidates(row, rec, spec["candidates"], inline)
                records.append(rec)
        splits[split] = records
        stats[split] = st
    known = {p.get("id") for p in passages}
    passages += [p for pid, p in inline.items() if pid not in known]
    if inline:
        pstats = {"passages": {**pstats.get("passages", {"read": 0, "malformed_lines": 0}),
                               "inline": len(inline)}}
    return FetchResult(splits=splits, passages=passages, stats={**stats, **pstats})


def _what(spec: dict[str, Any], where: str) -> str:
    """The user's file (or hub dataset) of a split, for messages."""
    if spec.get("kind") == "local":
        return f"local source {spec.get('file')} ({where})"
    return f"hf dataset {spec.get('path')!r} ({where})"


def fetch(source: dict[str, Any], task: str) -> FetchResult:
    """Load the three splits (and passages) described by `source` as `task` records."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {TASKS}")
    kind = source.get("kind")
    if kind == "synthetic":
        generator = source.get("generator", task)
        if generator != task:
            raise DataError(f"synthetic generator {generator!r} does not make {task!r} records")
        return synthetic.generate(generator, source.get("options") or {}, source.get("seed", 0))
    if kind in ("local", "hf"):
        return _fetch_rows(source, task)
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
