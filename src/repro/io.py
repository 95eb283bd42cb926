"""Small file helpers shared by every stage: jsonl with line-numbered errors, atomic writes, and
the alignment of predictions to their references by id."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data; the message names the file (and line) at fault."""


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write records one JSON object a line (UTF-8, not escaped); return how many."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def iter_jsonl(
    path: str | os.PathLike[str], lenient: bool = False, bad_lines: list[int] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a jsonl file, skipping blank lines.

    A line that is not a JSON object raises DataError naming file and line, unless `lenient`,
    in which case its line number is appended to `bad_lines` and it is skipped.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if lenient:
                    if bad_lines is not None:
                        bad_lines.append(lineno)
                    continue
                raise DataError(f"{path}, line {lineno}: malformed record ({e})") from e
            yield obj


def read_jsonl(path: str | os.PathLike[str], **kw: Any) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, **kw))


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def few(ids: list[Any], k: int = 5) -> str:
    """Up to k ids for an error message, and how many more there are."""
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f", ... ({len(ids) - k} more)" if len(ids) > k else "")


def align(predictions: list[dict[str, Any]], references: list[dict[str, Any]]) -> list[dict]:
    """Predictions reordered to follow the references by "id"; DataError on any mismatch."""
    by_id: dict[Any, dict[str, Any]] = {}
    for i, pred in enumerate(predictions):
        if "id" not in pred:
            raise DataError(f"prediction #{i + 1} has no id")
        if pred["id"] in by_id:
            raise DataError(f"duplicate prediction id {pred['id']!r}")
        by_id[pred["id"]] = pred
    ref_ids = []
    for i, ref in enumerate(references):
        if "id" not in ref:
            raise DataError(f"reference #{i + 1} has no id")
        ref_ids.append(ref["id"])
    missing = [i for i in ref_ids if i not in by_id]
    extra = sorted(set(by_id) - set(ref_ids), key=str)
    if missing or extra or len(predictions) != len(references):
        parts = [f"{len(predictions)} predictions for {len(references)} references"]
        if missing:
            parts.append(f"{len(missing)} missing ({few(missing)})")
        if extra:
            parts.append(f"{len(extra)} extra ({few(extra)})")
        raise DataError("; ".join(parts))
    return [by_id[i] for i in ref_ids]
