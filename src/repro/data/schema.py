"""Normalized record schema shared by every dataset, and the multiple-choice text format.

Every record has `id`, `source` and `target` (str). Multiple choice adds `choices` (2-8 str)
and `label` (index into choices; `target` is its letter). Knowledge adds `answers` (non-empty
list of str, `target` == answers[0]) and `provenance` (list of {"wikipedia_id", "title"}), and
optionally `candidates`: the ids (str) of the record's candidate passages in the dataset's
passages.jsonl, the per-question pool retrieval picks from (ALCE's docs). Co-supervision
training records also carry `cosup_output` and `evidence` (repro.data.cosup_format). Knowledge
passages are {"id", "title", "text"}. Extra fields are allowed and ignored. A source yields a
`FetchResult`; the task names are those of repro.tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from repro.tasks import TASKS

SPLITS: tuple[str, ...] = ("train", "validation", "test")
LETTERS = "ABCDEFGH"
MIN_CHOICES, MAX_CHOICES = 2, len(LETTERS)


@dataclass
class FetchResult:
    """What a source yields (repro.data.sources, repro.data.synthetic): records per split,
    knowledge passages, and per split {"read": n, "malformed_lines": n}."""

    splits: dict[str, list[dict[str, Any]]]
    passages: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


_UPPER = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")
_LOWER = re.compile(r"(?<![A-Za-z])([a-h])(?![A-Za-z])")


def letter(i: int) -> str:
    """The option letter of choice index `i` (0 -> "A")."""
    if not 0 <= i < len(LETTERS):
        raise ValueError(f"choice index {i} out of range 0..{len(LETTERS) - 1}")
    return LETTERS[i]


def letter_to_index(s: Any) -> int | None:
    """Tolerant inverse of `letter`: "B", " B.", "(B)", "Answer: B", "b" -> 1; else None.

    Takes the first stand-alone letter A-H (upper case preferred, then lower case), else the
    first character of the stripped text if it is an upper-case A-H.
    """
    if not isinstance(s, str):
        return None
    s = s.strip()
    m = _UPPER.search(s) or _LOWER.search(s)
    if m:
        return LETTERS.index(m.group(1).upper())
    if s and s[0] in LETTERS:
        return LETTERS.index(s[0])
    return None


def mc_source(question: str, choices: list[str], context: str | None = None) -> str:
    """Text-to-text multiple-choice input: context, question, then "A. ..." lines."""
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        raise ValueError(f"need {MIN_CHOICES}-{MAX_CHOICES} choices, got {len(choices)}")
    lines = [context] if context else []
    lines.append(question)
    lines.extend(f"{letter(i)}. {c}" for i, c in enumerate(choices))
    return "\n".join(lines)


def _is_str_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(v, str) for v in x)


def _check_mc(rec: dict[str, Any]) -> str | None:
    if "choices" not in rec:
        return "missing field 'choices'"
    if "label" not in rec:
        return "missing field 'label'"
    choices, label = rec["choices"], rec["label"]
    if not _is_str_list(choices):
        return "'choices' is not a list of str"
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        return f"'choices' has {len(choices)} items (need {MIN_CHOICES}-{MAX_CHOICES})"
    if not isinstance(label, int) or isinstance(label, bool):
        return "'label' is not an int"
    if not 0 <= label < len(choices):
        return "label out of range"
    if rec["target"] != letter(label):
        return "target is not the letter of label"
    return None


def _check_knowledge(rec: dict[str, Any]) -> str | None:
    for name in ("answers", "provenance"):
        if name not in rec:
            return f"missing field '{name}'"
    answers, prov = rec["answers"], rec["provenance"]
    if not _is_str_list(answers) or not answers:
        return "'answers' is not a non-empty list of str"
    if rec["target"] != answers[0]:
        return "target is not answers[0]"
    if not isinstance(prov, list):
        return "'provenance' is not a list"
    for p in prov:
        if not (isinstance(p, dict) and isinstance(p.get("wikipedia_id"), str)
                and isinstance(p.get("title"), str)):
            return "provenance item is not {'wikipedia_id': str, 'title': str}"
    if "candidates" in rec and not _is_str_list(rec["candidates"]):
        return "'candidates' is not a list of str"
    return None


def check_record(rec: dict[str, Any], task: str) -> str | None:
    """None if `rec` is a valid record of `task`, else a short reason."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if not isinstance(rec, dict):
        return "record is not an object"
    reason = _string_fields(rec, ("id", "source", "target"))
    if reason:
        return reason
    if not rec["id"]:
        return "empty id"
    if task == "multiple_choice":
        return _check_mc(rec)
    if task == "knowledge":
        return _check_knowledge(rec)
    return None


def check_passage(rec: dict[str, Any]) -> str | None:
    """None if `rec` is a valid passage {"id", "title", "text"} (all str), else a reason."""
    if not isinstance(rec, dict):
        return "passage is not an object"
    return _string_fields(rec, ("id", "title", "text"))


def _string_fields(rec: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The reason the first of `names` is missing from `rec` or not a str, else None."""
    for name in names:
        if name not in rec:
            return f"missing field '{name}'"
        if not isinstance(rec[name], str):
            return f"'{name}' is not a str"
    return None
